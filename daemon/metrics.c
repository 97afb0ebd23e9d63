/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "metrics.h"

/* Upper bounds of the latency buckets, in microseconds (+Inf is the count). */
static const uint64_t bucket_usec[] = {
	1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000,
};
#define N_BUCKETS ELEMENTSOF(bucket_usec)

struct histogram {
	uint64_t bucket[N_BUCKETS];	/* not cumulative: rendered as running sums */
	uint64_t count, sum_usec;
};

static struct {
	uint64_t counter[_METRIC_COUNTER_MAX];
	uint64_t fetches[_METRIC_SOURCE_MAX][_METRIC_RESULT_MAX];
	struct histogram fetch_latency[_METRIC_SOURCE_MAX];
	uint64_t attaches[_METRIC_RESULT_MAX];
	struct histogram attach_latency;
	uint64_t refused[_METRIC_REFUSAL_MAX];
	int last_fetch[_METRIC_SOURCE_MAX];	/* enum metric_result + 1; 0: none yet */
} m;

static const char *const source_names[_METRIC_SOURCE_MAX] = { "local", "barbican", "cache",
							      "supplied" };
static const char *const result_names[_METRIC_RESULT_MAX] = { "ok", "error", "refused" };
static const char *const refusal_names[_METRIC_REFUSAL_MAX] = { "permission", "bad-request",
								"limit" };

static const struct {
	const char *name, *help;
} counters[_METRIC_COUNTER_MAX] = {
	[METRIC_KEY_INSTALLS] = { "keyscope_key_installs", "Kernel keys added for a scope." },
	[METRIC_KEY_RELEASES] = { "keyscope_key_releases", "Holders dropped from a scope." },
	[METRIC_KEY_INVALIDATIONS] = { "keyscope_key_invalidations",
				       "Kernel keys invalidated when their scope's last holder went." },
	[METRIC_RETRIES] = { "keyscope_source_retries", "Key-source requests retried." },
	[METRIC_CACHE_HITS] = { "keyscope_cache_hits", "Keys installed from the sealed cache." },
	[METRIC_REQUEST_KEY_GRANTED] = { "keyscope_request_key_granted",
					 "request-key upcalls the policy granted." },
	[METRIC_REQUEST_KEY_REFUSED] = { "keyscope_request_key_refused",
					 "request-key upcalls the policy refused." },
};

void metrics_count(enum metric_counter c)
{
	if ((unsigned) c < _METRIC_COUNTER_MAX)
		m.counter[c]++;
}

static void observe(struct histogram *h, uint64_t usec)
{
	for (size_t i = 0; i < N_BUCKETS; i++)
		if (usec <= bucket_usec[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum_usec += usec;
}

void metrics_count_fetch(enum metric_source s, enum metric_result r, uint64_t usec)
{
	if ((unsigned) s >= _METRIC_SOURCE_MAX || (unsigned) r >= _METRIC_RESULT_MAX)
		return;
	m.fetches[s][r]++;
	m.last_fetch[s] = (int) r + 1;
	observe(&m.fetch_latency[s], usec);
}

int metrics_last_fetch(enum metric_source s)
{
	return (unsigned) s < _METRIC_SOURCE_MAX ? m.last_fetch[s] - 1 : -1;
}

void metrics_count_attach(enum metric_result r, uint64_t usec)
{
	if ((unsigned) r >= _METRIC_RESULT_MAX)
		return;
	m.attaches[r]++;
	observe(&m.attach_latency, usec);
}

void metrics_count_refusal(enum metric_refusal reason)
{
	if ((unsigned) reason < _METRIC_REFUSAL_MAX)
		m.refused[reason]++;
}

void metrics_reset(void)
{
	memset(&m, 0, sizeof(m));
}

/* "# TYPE"/"# HELP" (and "# UNIT") of a family; counters drop _total in OpenMetrics only. */
static void family(FILE *f, const char *name, const char *type, const char *unit,
		   const char *help, bool om)
{
	const char *suffix = !om && streq(type, "counter") ? "_total" : "";

	fprintf(f, "# TYPE %s%s %s\n", name, suffix, type);
	if (om && unit)
		fprintf(f, "# UNIT %s %s\n", name, unit);
	fprintf(f, "# HELP %s%s %s\n", name, suffix, help);
}

static void histogram(FILE *f, const char *name, const char *label, const struct histogram *h)
{
	char sep[64];
	uint64_t cum = 0;

	/* label is "" or `source="local"`: the bucket's labels then need a comma. */
	snprintf(sep, sizeof(sep), "%s%s", label, *label ? "," : "");
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, sep,
			(double) bucket_usec[i] / 1e6, cum);
	}
	fprintf(f, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, sep, h->count);
	fprintf(f, "%s_count%s%s%s %" PRIu64 "\n", name, *label ? "{" : "", label,
		*label ? "}" : "", h->count);
	fprintf(f, "%s_sum%s%s%s %.6f\n", name, *label ? "{" : "", label, *label ? "}" : "",
		(double) h->sum_usec / 1e6);
}

static void gauge(FILE *f, const char *name, const char *help, int64_t v, bool om)
{
	if (v < 0)
		return;	/* unknown: no sample rather than a made-up one */
	family(f, name, "gauge", NULL, help, om);
	fprintf(f, "%s %" PRId64 "\n", name, v);
}

static void render_gauges(FILE *f, const struct metric_gauges *g, bool om)
{
	gauge(f, "keyscope_scopes", "Scopes with a kernel key on this node.", (int64_t) g->scopes,
	      om);
	gauge(f, "keyscope_holders", "Holders over all scopes.", (int64_t) g->holders, om);
	gauge(f, "keyscope_attachments", "dm-crypt mappings keyscoped opened.",
	      (int64_t) g->attachments, om);
	gauge(f, "keyscope_volumes_pending", "Declared volumes waiting for their key source.",
	      (int64_t) g->volumes_pending, om);
	gauge(f, "keyscope_consumer_changes_pending",
	      "Barbican consumer registrations and removals not yet made.",
	      (int64_t) g->consumer_changes_pending, om);
	gauge(f, "keyscope_unlocks_running", "Keyslot unlocks running.",
	      (int64_t) g->unlocks_running, om);
	gauge(f, "keyscope_unlocks_queued", "Keyslot unlocks waiting for a slot.",
	      (int64_t) g->unlocks_queued, om);
	gauge(f, "keyscope_state_writable", "1 when the state folder could be written.",
	      g->state_writable ? 1 : 0, om);
	gauge(f, "keyscope_cache_oldest_age_seconds", "Age of the oldest sealed cached key.",
	      g->cache_oldest_age_seconds, om);
	gauge(f, "keyscope_kernel_key_quota_keys", "Kernel keys the daemon's uid owns.",
	      g->quota_keys, om);
	gauge(f, "keyscope_kernel_key_quota_keys_max", "Kernel key quota (keys) of that uid.",
	      g->quota_keys_max, om);
	gauge(f, "keyscope_kernel_key_quota_bytes", "Kernel key payload bytes that uid owns.",
	      g->quota_bytes, om);
	gauge(f, "keyscope_kernel_key_quota_bytes_max", "Kernel key quota (bytes) of that uid.",
	      g->quota_bytes_max, om);
}

static void render_labelled(FILE *f, bool om)
{
	char label[64];

	family(f, "keyscope_fetches", "counter", NULL, "Key fetches by source and result.", om);
	for (int s = 0; s < _METRIC_SOURCE_MAX; s++)
		for (int r = 0; r < _METRIC_RESULT_MAX; r++)
			fprintf(f, "keyscope_fetches_total{source=\"%s\",result=\"%s\"} %" PRIu64
				"\n", source_names[s], result_names[r], m.fetches[s][r]);
	family(f, "keyscope_fetch_duration_seconds", "histogram", "seconds",
	       "Time from asking a key source for a key to its answer.", om);
	for (int s = 0; s < _METRIC_SOURCE_MAX; s++) {
		snprintf(label, sizeof(label), "source=\"%s\"", source_names[s]);
		histogram(f, "keyscope_fetch_duration_seconds", label, &m.fetch_latency[s]);
	}
	family(f, "keyscope_attaches", "counter", NULL, "Volume attaches by result.", om);
	for (int r = 0; r < _METRIC_RESULT_MAX; r++)
		fprintf(f, "keyscope_attaches_total{result=\"%s\"} %" PRIu64 "\n", result_names[r],
			m.attaches[r]);
	family(f, "keyscope_attach_duration_seconds", "histogram", "seconds",
	       "Time of a volume attach, from request to reply.", om);
	histogram(f, "keyscope_attach_duration_seconds", "", &m.attach_latency);
	family(f, "keyscope_requests_refused", "counter", NULL,
	       "Control requests refused, by reason.", om);
	for (int r = 0; r < _METRIC_REFUSAL_MAX; r++)
		fprintf(f, "keyscope_requests_refused_total{reason=\"%s\"} %" PRIu64 "\n",
			refusal_names[r], m.refused[r]);
}

int metrics_render(FILE *f, const struct metric_gauges *g, bool openmetrics)
{
	for (int c = 0; c < _METRIC_COUNTER_MAX; c++) {
		family(f, counters[c].name, "counter", NULL, counters[c].help, openmetrics);
		fprintf(f, "%s_total %" PRIu64 "\n", counters[c].name, m.counter[c]);
	}
	render_labelled(f, openmetrics);
	render_gauges(f, g, openmetrics);
	if (openmetrics)
		fputs("# EOF\n", f);
	if (fflush(f) != 0 || ferror(f))
		return errno > 0 ? -errno : -EIO;
	return 0;
}

void metrics_read_quota(uint32_t uid, struct metric_gauges *g)
{
	char line[256];
	FILE *f;

	g->quota_keys = g->quota_keys_max = g->quota_bytes = g->quota_bytes_max = -1;
	f = fopen("/proc/key-users", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long u, usage, nkeys, nikeys;
		long long qk, qkmax, qb, qbmax;

		/* "    0:    10 9/9 8/1000000 239/25000000" */
		if (sscanf(line, " %lu: %lu %lu/%lu %lld/%lld %lld/%lld", &u, &usage, &nkeys,
			   &nikeys, &qk, &qkmax, &qb, &qbmax) != 8 || u != uid)
			continue;
		g->quota_keys = qk;
		g->quota_keys_max = qkmax;
		g->quota_bytes = qb;
		g->quota_bytes_max = qbmax;
		break;
	}
	fclose(f);
}
