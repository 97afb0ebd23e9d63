/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscoped's heap settings and when it gives freed heap pages back (issue 13: anonymous
 * memory at 10,000 scopes). A 10,000-scope reply (2 MB) or the start-up's parse of
 * scopes.json is freed among long-lived scopes, so glibc cannot shrink the heap from its top;
 * malloc_trim(0) returns the free pages in its middle as well.
 */
#pragma once

#include <systemd/sd-event.h>

struct call;

/* Before anything is allocated: the fixed mmap threshold. */
void memory_init(void);

/* After the start-up's loads: gives their freed pages back now. */
void memory_trim(void);

/*
 * A call is about to be answered: after a large reply (a scope list, a status), the freed
 * pages are given back on the next event-loop iteration, once the reply text is freed. event
 * may be NULL (no trim then).
 */
void memory_call_done(sd_event *event, const struct call *c);

/* Drops the pending trim (before the event loop goes). */
void memory_done(void);
