/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <malloc.h>
#include <string.h>

#include "call.h"
#include "memory.h"

/* A reply this large (ScopeList, Status from ~1,200 scopes on) is followed by a trim. */
#define TRIM_AFTER_REPLY (256u * 1024)

static sd_event_source *trim_source;

void memory_init(void)
{
	/* A fixed threshold: glibc's moving one would, after a 10,000-scope list was freed, serve
	 * the next large replies from the heap and keep their pages (docs/benchmarks.md). */
	(void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

void memory_trim(void)
{
	(void) malloc_trim(0);
}

static int on_trim(sd_event_source *es, void *userdata)
{
	memory_trim();
	trim_source = sd_event_source_disable_unref(trim_source);
	return 0;
}

void memory_call_done(sd_event *event, const struct call *c)
{
	if (!event || trim_source || !c->reply_text ||
	    strnlen(c->reply_text, TRIM_AFTER_REPLY) < TRIM_AFTER_REPLY)
		return;
	/* No source (no memory): the pages are only given back later, ignoring. */
	(void) sd_event_add_defer(event, &trim_source, on_trim, NULL);
}

void memory_done(void)
{
	trim_source = sd_event_source_disable_unref(trim_source);
}
