/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key sources' part of the metrics (source_gauges(), source.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "metrics.h"
#include "source-internal.h"
#include "util.h"

/* Age of the oldest "<key-id>.key" in the cache folder, by its time of writing; -1: none. */
static int64_t cache_oldest_age(const struct source *s)
{
	_cleanup_close_ int dfd = -EBADF;
	int64_t oldest = -1, now = (int64_t) time(NULL);
	struct dirent *de;
	DIR *d;

	if (!cache_on(s))
		return -1;
	dfd = open(s->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	d = fdopendir(dfd);
	if (!d)
		return -1;
	dfd = -EBADF;	/* transferred */
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct stat st;
		int64_t age;

		if (n < 5 || !streq(de->d_name + n - 4, ".key") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		age = now > (int64_t) st.st_mtime ? now - (int64_t) st.st_mtime : 0;
		if (age > oldest)
			oldest = age;
	}
	closedir(d);
	return oldest;
}

void source_gauges(struct source *s, struct metric_gauges *g)
{
	unsigned consumers = 0;

	for (struct job *j = s ? s->jobs : NULL; j; j = j->next)
		consumers += j->kind == JOB_CONSUMER;
	g->consumer_changes_pending = consumers;
	g->cache_oldest_age_seconds = s ? cache_oldest_age(s) : -1;
}
