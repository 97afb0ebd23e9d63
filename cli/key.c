/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "keyid.h"
#include "secret.h"
#include "util.h"

/* Parses "[--name NAME] [--bits N]" style options; returns optind or -1. */
static int parse_name_bits(int argc, char **argv, const char **name, unsigned *bits)
{
	static const struct option options[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "bits", required_argument, NULL, 'b' },
		{}
	};
	int c;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "+n:b:", options, NULL)) >= 0) {
		if (c == 'n')
			*name = optarg;
		else if (c == 'b' && bits) {
			if (parse_uint(optarg, 0, 65536, bits) < 0 || (*bits != 256 && *bits != 512)) {
				fprintf(stderr, "keyscopectl: --bits must be 256 or 512.\n");
				return -1;
			}
		} else
			return -1;
	}
	return optind;
}

static json_object *params_with(const char *k1, const char *v1, const char *k2,
				const char *v2)
{
	json_object *p = json_object_new_object();

	if (k1 && v1)
		json_object_object_add(p, k1, json_object_new_string(v1));
	if (k2 && v2)
		json_object_object_add(p, k2, json_object_new_string(v2));
	return p;
}

static void print_id(json_object *rp)
{
	printf("%s\n", json_str(rp, "key-id"));
}

/* Prints the key-id of a reply (or the JSON) and returns an exit status. */
static int print_key_id(const char *method, json_object *params)
{
	return ctl_call_print(method, params, print_id);
}

static int invalid_id(const char *id);

int key_create(int argc, char **argv)
{
	const char *name = NULL;
	unsigned bits = 512;
	json_object *p;
	int i = parse_name_bits(argc, argv, &name, &bits);

	if (i < 0 || i != argc)
		return ctl_usage();
	p = params_with("name", name, NULL, NULL);
	json_object_object_add(p, "bits", json_object_new_int((int) bits));
	return print_key_id("keyscope.KeyCreate", p);
}

int key_import(int argc, char **argv)
{
	_cleanup_json_ json_object *reply = NULL;
	_cleanup_secret_ unsigned char *key = NULL;
	const char *name = NULL;
	json_object *rp;
	ssize_t n;
	int i = parse_name_bits(argc, argv, &name, NULL);

	if (i < 0 || i != argc)
		return ctl_usage();
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "keyscopectl: key import reads the raw key from standard input; "
				"redirect it from a file or pipe, not a terminal.\n");
		return 2;
	}
	/* One byte more than the largest key, to tell "64" from "longer than 64". */
	key = secret_alloc(65);
	if (!key)
		return 1;
	n = loop_read(STDIN_FILENO, key, 65);
	if (n < 0) {
		fprintf(stderr, "keyscopectl: failed to read the key: %s\n", strerror((int) -n));
		return 1;
	}
	if (n != 32 && n != 64) {
		fprintf(stderr, "keyscopectl: a key must be exactly 32 or 64 raw bytes on standard "
				"input, got %s%zd.\n", n == 65 ? "more than " : "",
			n == 65 ? (ssize_t) 64 : n);
		return 1;
	}
	if (ctl_call("keyscope.KeyImport", params_with("name", name, NULL, NULL), key,
		     (size_t) n, &reply, &rp) < 0)
		return 1;
	if (ctl.json)
		ctl_print_json(rp);
	else
		printf("%s\n", json_str(rp, "key-id"));
	return 0;
}

static int invalid_id(const char *id)
{
	fprintf(stderr, "keyscopectl: '%.64s%s' is not a valid key-id (1-%d characters of "
			"[A-Za-z0-9._-], starting with a letter or digit, no '..').\n",
		id, strlen(id) > 64 ? "..." : "", KEYID_MAX);
	return 2;
}

/* Checks "CMD [--] KEY-ID"; returns 0 and the key-id in *ret_id, or an exit status. */
static int check_id_arg(int argc, char **argv, const char **ret_id)
{
	if (argc == 3 && streq(argv[1], "--"))
		argv++, argc--;
	if (argc != 2)
		return ctl_usage();
	if (!keyid_is_valid(argv[1]))
		return invalid_id(argv[1]);
	*ret_id = argv[1];
	return 0;
}

int key_delete(int argc, char **argv)
{
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp;
	const char *id = NULL;
	int r = check_id_arg(argc, argv, &id);

	if (r)
		return r;
	if (ctl_call("keyscope.KeyDelete", params_with("key-id", id, NULL, NULL), NULL, 0,
		     &reply, &rp) < 0)
		return 1;
	if (ctl.json)
		ctl_print_json(rp);
	return 0;
}

int key_clone(int argc, char **argv)
{
	const char *name = NULL;
	int i = parse_name_bits(argc, argv, &name, NULL);

	if (i < 0 || i != argc - 1)
		return ctl_usage();
	if (!keyid_is_valid(argv[i]))
		return invalid_id(argv[i]);
	return print_key_id("keyscope.KeyClone", params_with("key-id", argv[i], "name", name));
}

static void print_scope_line(json_object *s)
{
	printf("keyscope:%s serial %lld holders %lld\n", json_str(s, "key-id"),
	       json_int(s, "serial"), json_int(s, "holders"));
}

/* "install|release [--] KEY-ID...": one key-id, or several in one all-or-nothing request. */
static int key_hold(int argc, char **argv, const char *method)
{
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp, *params, *scopes;
	int first = 1;

	if (argc >= 2 && streq(argv[1], "--"))
		first = 2;
	if (argc <= first)
		return ctl_usage();
	for (int i = first; i < argc; i++)
		if (!keyid_is_valid(argv[i]))
			return invalid_id(argv[i]);
	if (argc - first == 1)
		params = params_with("key-id", argv[first], NULL, NULL);
	else {
		json_object *a = json_object_new_array();
		for (int i = first; i < argc; i++)
			json_object_array_add(a, json_object_new_string(argv[i]));
		params = json_object_new_object();
		json_object_object_add(params, "key-ids", a);
	}
	if (ctl_call(method, params, NULL, 0, &reply, &rp) < 0)
		return 1;
	if (ctl.json)
		ctl_print_json(rp);
	else if (json_object_object_get_ex(rp, "scopes", &scopes))
		for (size_t i = 0; i < json_object_array_length(scopes); i++)
			print_scope_line(json_object_array_get_idx(scopes, i));
	else
		print_scope_line(rp);
	return 0;
}

int key_install(int argc, char **argv)
{
	return key_hold(argc, argv, "keyscope.KeyInstall");
}

int key_release(int argc, char **argv)
{
	return key_hold(argc, argv, "keyscope.KeyRelease");
}

int key_list(int argc, char **argv)
{
	static const struct option options[] = {
		{ "source", required_argument, NULL, 's' },
		{}
	};
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp, *keys, *params = NULL;
	const char *source = NULL;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+s:", options, NULL)) >= 0) {
		if (c != 's')
			return ctl_usage();
		source = optarg;
	}
	if (optind != argc)
		return ctl_usage();
	if (source)
		params = params_with("source", source, NULL, NULL);
	/* ctl_call() takes params. */
	if (ctl_call("keyscope.KeyList", params, NULL, 0, &reply, &rp) < 0)
		return 1;
	if (ctl.json) {
		ctl_print_json(rp);
		return 0;
	}
	if (!json_object_object_get_ex(rp, "keys", &keys))
		return 1;
	printf("%-36s %5s %-20s %s\n", "KEY-ID", "BITS", "CREATED", "NAME");
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		json_object *k = json_object_array_get_idx(keys, i);
		time_t t = (time_t) json_int(k, "created");
		char when[32] = "-";
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%-36s %5lld %-20s %s", json_str(k, "key-id"), json_int(k, "bits"), when,
		       json_str(k, "name"));
		/* Barbican lists what is delegated, usable as a key or not: say which and why. */
		if (json_object_object_get_ex(k, "usable", NULL) &&
		    !json_object_get_boolean(json_object_object_get(k, "usable")))
			printf("  (not usable: %s)", json_str(k, "problem"));
		printf("\n");
	}
	return 0;
}
