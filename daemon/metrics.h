/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's counters and latency histograms, rendered as OpenMetrics text (keyscopectl
 * metrics) or in Prometheus' text format 0.0.4 (the metrics-file for node_exporter's textfile
 * collector). Names and units follow Prometheus' conventions: counters end in _total, durations
 * are in seconds. Counting is a few additions, so call sites count unconditionally.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum metric_counter {
	METRIC_KEY_INSTALLS,		/* kernel keys added */
	METRIC_KEY_RELEASES,		/* holders dropped */
	METRIC_KEY_INVALIDATIONS,	/* kernel keys invalidated (last holder) */
	METRIC_RETRIES,			/* key-source requests retried */
	METRIC_CACHE_HITS,		/* keys taken from the sealed cache */
	METRIC_REQUEST_KEY_GRANTED,
	METRIC_REQUEST_KEY_REFUSED,
	_METRIC_COUNTER_MAX,
};

enum metric_source { METRIC_SOURCE_LOCAL, METRIC_SOURCE_BARBICAN, METRIC_SOURCE_CACHE,
		     METRIC_SOURCE_SUPPLIED, _METRIC_SOURCE_MAX };
enum metric_result { METRIC_OK, METRIC_ERROR, METRIC_REFUSED, _METRIC_RESULT_MAX };
enum metric_refusal { METRIC_REFUSED_PERMISSION, METRIC_REFUSED_BAD_REQUEST,
		      METRIC_REFUSED_LIMIT, _METRIC_REFUSAL_MAX };

/* Gauges are read when the metrics are rendered: the caller fills them in. */
struct metric_gauges {
	uint64_t scopes, holders, attachments, volumes_pending;
	uint64_t consumer_changes_pending, unlocks_running, unlocks_queued;
	int64_t cache_oldest_age_seconds;	/* -1: no cached key */
	int64_t quota_keys, quota_keys_max, quota_bytes, quota_bytes_max;	/* -1: unknown */
	bool state_writable;
};

void metrics_count(enum metric_counter c);
void metrics_count_fetch(enum metric_source s, enum metric_result r, uint64_t usec);
void metrics_count_attach(enum metric_result r, uint64_t usec);
void metrics_count_refusal(enum metric_refusal reason);
/* The result of the last fetch from s, or -1 when there was none (for sd_notify's STATUS). */
int metrics_last_fetch(enum metric_source s);
/* Forgets every count (tests). */
void metrics_reset(void);

/*
 * Writes every metric to f. openmetrics: OpenMetrics 1.0 (# UNIT, counter families without
 * _total, # EOF); otherwise Prometheus text 0.0.4. Returns 0 or -errno (a write error).
 */
int metrics_render(FILE *f, const struct metric_gauges *g, bool openmetrics);

/* The kernel's key quota for uid (/proc/key-users); -1 in each field it cannot read. */
void metrics_read_quota(uint32_t uid, struct metric_gauges *g);
