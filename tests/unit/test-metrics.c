/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Metrics rendering (daemon/metrics.c): counters move, histogram buckets are cumulative and end
 * at +Inf = count, OpenMetrics has # EOF and counter families without _total, Prometheus' text
 * format types the _total sample, unknown gauges are left out. tests/host/t-metrics.sh parses
 * the daemon's real output with python3-prometheus-client's parsers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(bool om, const struct metric_gauges *g)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(metrics_render(f, g, om), 0);
	fclose(f);
	return buf;
}

static void test_counters(void **state)
{
	struct metric_gauges g = { .scopes = 2, .quota_keys = -1, .quota_keys_max = -1,
				   .quota_bytes = -1, .quota_bytes_max = -1,
				   .cache_oldest_age_seconds = -1 };
	char *s;

	metrics_reset();
	metrics_count(METRIC_KEY_INSTALLS);
	metrics_count(METRIC_KEY_INSTALLS);
	metrics_count_fetch(METRIC_SOURCE_BARBICAN, METRIC_ERROR, 3000000);
	metrics_count_refusal(METRIC_REFUSED_PERMISSION);
	s = render(true, &g);
	assert_non_null(strstr(s, "# TYPE keyscope_key_installs counter\n"));
	assert_non_null(strstr(s, "\nkeyscope_key_installs_total 2\n"));
	assert_non_null(strstr(s, "keyscope_fetches_total{source=\"barbican\",result=\"error\"} 1\n"));
	assert_non_null(strstr(s, "keyscope_requests_refused_total{reason=\"permission\"} 1\n"));
	assert_non_null(strstr(s, "\nkeyscope_scopes 2\n"));
	assert_null(strstr(s, "keyscope_kernel_key_quota_keys "));	/* unknown: left out */
	assert_non_null(strstr(s, "# UNIT keyscope_fetch_duration_seconds seconds\n"));
	assert_int_equal(strcmp(s + strlen(s) - 6, "# EOF\n"), 0);
	free(s);
	s = render(false, &g);
	assert_non_null(strstr(s, "# TYPE keyscope_key_installs_total counter\n"));
	assert_null(strstr(s, "# EOF"));
	assert_null(strstr(s, "# UNIT"));
	free(s);
}

static void test_histogram(void **state)
{
	struct metric_gauges g = { .cache_oldest_age_seconds = -1 };
	char *s;

	metrics_reset();
	metrics_count_attach(METRIC_OK, 800);		/* <= 1 ms */
	metrics_count_attach(METRIC_OK, 40000);		/* <= 50 ms */
	metrics_count_attach(METRIC_ERROR, 60000000);	/* over the last bound */
	s = render(true, &g);
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_bucket{le=\"0.001\"} 1\n"));
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_bucket{le=\"0.025\"} 1\n"));
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_bucket{le=\"0.05\"} 2\n"));
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_bucket{le=\"30\"} 2\n"));
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_count 3\n"));
	assert_non_null(strstr(s, "keyscope_attach_duration_seconds_sum 60.040800\n"));
	assert_non_null(strstr(s, "keyscope_attaches_total{result=\"error\"} 1\n"));
	assert_non_null(strstr(s,
		"keyscope_fetch_duration_seconds_bucket{source=\"local\",le=\"+Inf\"} 0\n"));
	free(s);
}

/* STATUS= says whether Barbican answers from the last fetch's result. */
static void test_last_fetch(void **state)
{
	metrics_reset();
	assert_int_equal(metrics_last_fetch(METRIC_SOURCE_BARBICAN), -1);
	metrics_count_fetch(METRIC_SOURCE_BARBICAN, METRIC_ERROR, 10);
	assert_int_equal(metrics_last_fetch(METRIC_SOURCE_BARBICAN), METRIC_ERROR);
	metrics_count_fetch(METRIC_SOURCE_BARBICAN, METRIC_OK, 10);
	assert_int_equal(metrics_last_fetch(METRIC_SOURCE_BARBICAN), METRIC_OK);
	assert_int_equal(metrics_last_fetch(METRIC_SOURCE_CACHE), -1);
	assert_int_equal(metrics_last_fetch(_METRIC_SOURCE_MAX), -1);
}

static void test_quota(void **state)
{
	struct metric_gauges g;

	metrics_read_quota(0, &g);
	/* /proc/key-users lists root once the kernel has any key of root's; else all unknown. */
	if (g.quota_keys >= 0) {
		assert_true(g.quota_keys_max >= g.quota_keys);
		assert_true(g.quota_bytes_max >= g.quota_bytes);
	}
	metrics_read_quota(4000000000u, &g);
	assert_int_equal(g.quota_keys, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_last_fetch),
		cmocka_unit_test(test_quota),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
