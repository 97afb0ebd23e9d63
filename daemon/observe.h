/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What keyscoped tells an operator about its work besides its log lines: the audit events and
 * metrics of each finished control call (refusals, failed attaches, attach latency), the
 * gauges read when the metrics are rendered (keyscope.Metrics, metrics-file), the sd_notify
 * STATUS= line, and the timer that refreshes both. The counters themselves are metrics.h.
 */
#pragma once

#include <stdbool.h>

#include "call.h"

/*
 * A control call has its result (c->error or c->reply) and is about to be answered: counts
 * it and logs the events the method layer does not (refusals, failed attaches), and after a
 * large reply has the freed heap pages given back (memory.h). c->daemon is
 * NULL for a message refused before any method (too large).
 */
void observe_call_done(const struct call *c);

/* The metrics as text in *ret (free() it): OpenMetrics 1.0 or Prometheus text 0.0.4.
 * Returns 0 or -errno. */
int observe_render(struct daemon *d, bool openmetrics, char **ret);

/*
 * Tells systemd READY=1 with the STATUS= line, and arms the timer that refreshes STATUS= and
 * rewrites metrics-file (atomically) every metrics-interval. Returns 0 or -errno (logged).
 */
int observe_start(struct daemon *d);
void observe_stop(void);

/* Sends STATUS= ("Serving 3 scopes, 2 volumes; barbican reachable") when it changed. */
void observe_status(struct daemon *d);

/* keyscope.Metrics: {"format": "openmetrics"|"prometheus"} -> {"format", "text"}. */
int m_metrics(struct call *c);
