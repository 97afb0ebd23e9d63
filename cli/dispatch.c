/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Finding a command in the table (cli/commands.c) and printing its help and usage from it. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

#define HELP_WIDTH 79

/* The command running now and the words before its name, for ctl_usage(). */
static const struct command *current;
static const char *current_path = "";

/* Prints path and name: "key create", "status". */
static void print_name(FILE *f, const char *path, const struct command *c)
{
	fprintf(f, "%s%s%s", path, *path ? " " : "", c->name);
}

/*
 * Prints one synopsis form after lead, broken between words outside brackets so that no line
 * is wider than HELP_WIDTH; continuation lines are indented by indent.
 */
static void print_form(FILE *f, int col, const char *form, size_t len, int indent)
{
	const char *p = form, *end = form + len;

	while (p < end) {
		const char *w = p;
		int depth = 0;

		/* One word: up to a space outside [...]. */
		while (w < end && (*w != ' ' || depth > 0)) {
			depth += *w == '[' ? 1 : *w == ']' ? -1 : 0;
			w++;
		}
		if (col + 1 + (int) (w - p) > HELP_WIDTH && col > indent) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		}
		col += fprintf(f, " %.*s", (int) (w - p), p);
		p = w < end ? w + 1 : w;
	}
	fputc('\n', f);
}

/* "PREFIXkeyscopectl [--json] key create SYNOPSIS", one line (or more) per form. */
static void print_synopsis(FILE *f, const char *prefix, const char *path,
			   const struct command *c)
{
	const char *s = c->synopsis ?: "";
	bool first = true;

	for (;;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t) (nl - s) : strlen(s);
		/* "Usage: " forms after the first start with "   or: ", as getopt's users do. */
		int col = fprintf(f, "%skeyscopectl%s ",
				  first || !streq(prefix, "Usage: ") ? prefix : "   or: ",
				  c->global_json ? " [--json]" : "");

		print_name(f, path, c);
		col += (int) strlen(path) + (*path ? 1 : 0) + (int) strlen(c->name);
		print_form(f, col, s, len, (int) strlen(prefix) + 8);
		if (!nl)
			return;
		s = nl + 1;
		first = false;
	}
}

/* keyscopectl GROUP --help: the subcommands with their synopses. */
static void help_group(const char *path, const struct command *g)
{
	printf("Usage: keyscopectl ");
	print_name(stdout, path, g);
	printf(" SUBCOMMAND ...\n\n%c%s.\n\nSubcommands:\n", toupper((unsigned char) g->help[0]),
	       g->help + 1);
	for (const struct command *c = g->sub; c->name; c++) {
		const char *s = c->synopsis;
		int col = printf("  %s", c->name);

		/* First form only here; CMD SUB --help shows them all. */
		print_form(stdout, col, s, strcspn(s, "\n"), 8);
		printf("      %s\n", c->help);
	}
	printf("\nSee 'keyscopectl %s%s%s SUBCOMMAND --help' and keyscopectl(8).\n", path,
	       *path ? " " : "", g->name);
}

static void help_command(const char *path, const struct command *c)
{
	if (c->sub) {
		help_group(path, c);
		return;
	}
	print_synopsis(stdout, "Usage: ", path, c);
	printf("\n%c%s.\n", toupper((unsigned char) c->help[0]), c->help + 1);
	if (c->details)
		printf("\n%s", c->details);
	printf("\nSee keyscopectl(8).\n");
}

void ctl_help(void)
{
	printf("Usage: keyscopectl %s\n\nCommands:\n", ctl_global_synopsis);
	for (const struct command *c = ctl_commands; c->name; c++)
		printf("  %-8s %s\n", c->name, c->help);
	printf("\nSynopsis:\n");
	for (const struct command *c = ctl_commands; c->name; c++) {
		if (!c->sub) {
			print_synopsis(stdout, "  ", "", c);
			continue;
		}
		for (const struct command *s = c->sub; s->name; s++)
			print_synopsis(stdout, "  ", c->name, s);
	}
	printf("\nOptions:\n%s\nSee 'keyscopectl COMMAND --help' and keyscopectl(8).\n",
	       ctl_global_options);
}

static const struct command *find(const struct command *table, const char *name)
{
	for (const struct command *c = table; c->name; c++)
		if (streq(c->name, name))
			return c;
	return NULL;
}

static bool is_help(const char *arg)
{
	return streq(arg, "--help") || streq(arg, "-h");
}

/* Is --help (or -h) among the arguments, before a "--"? */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
		if (is_help(argv[i]))
			return true;
	return false;
}

static int unknown(const char *path, const char *what)
{
	fprintf(stderr, "keyscopectl: %s%s%s: unknown command. Try 'keyscopectl %s%s--help'.\n",
		path, *path ? " " : "", what, path, *path ? " " : "");
	return 2;
}

int ctl_dispatch(const struct command *table, const char *path, int argc, char **argv)
{
	const struct command *c;

	if (argc < 1) {
		fprintf(stderr, "keyscopectl: %s%sno command given. Try 'keyscopectl %s%s--help'.\n",
			path, *path ? ": " : "", path, *path ? " " : "");
		return 2;
	}
	c = find(table, argv[0]);
	if (!c)
		return unknown(path, argv[0]);
	if (c->sub) {
		if (argc >= 2 && (is_help(argv[1]) || streq(argv[1], "help"))) {
			help_group(path, c);
			return 0;
		}
		/* Only the top level has groups: their path is the group's name. */
		return ctl_dispatch(c->sub, c->name, argc - 1, argv + 1);
	}
	if (wants_help(argc, argv)) {
		help_command(path, c);
		return 0;
	}
	current = c;
	current_path = path;
	return c->run(argc, argv);
}

int ctl_help_main(int argc, char **argv)
{
	const struct command *c, *s;

	if (argc == 1) {
		ctl_help();
		return 0;
	}
	c = find(ctl_commands, argv[1]);
	if (!c)
		return unknown("", argv[1]);
	if (argc == 2) {
		help_command("", c);
		return 0;
	}
	s = c->sub ? find(c->sub, argv[2]) : NULL;
	if (argc > 3 || !s)
		return argc > 3 ? ctl_usage() : unknown(c->name, argv[2]);
	help_command(c->name, s);
	return 0;
}

int ctl_usage(void)
{
	if (!current)
		return 2;
	print_synopsis(stderr, "Usage: ", current_path, current);
	fprintf(stderr, "Try 'keyscopectl %s%s%s --help'.\n", current_path,
		*current_path ? " " : "", current->name);
	return 2;
}
