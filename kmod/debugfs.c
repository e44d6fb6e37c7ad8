// SPDX-License-Identifier: GPL-2.0
/*
 * Observability: /sys/kernel/debug/pyshm/regions lists the live regions, one
 * line each, and /sys/kernel/debug/pyshm/stats keeps the totals. Both are
 * read by the selftests; the columns are documented in userspace-api.rst.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "internal.h"

struct pyshm_stats pyshm_stats;

static struct dentry *debugfs_dir;

static int regions_show(struct seq_file *m, void *unused)
{
	pyshm_region_show_all(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(regions);

static int stats_show(struct seq_file *m, void *unused)
{
	u64 regions, bytes;

	pyshm_region_totals(&regions, &bytes);
	seq_printf(m, "regions %llu\n", regions);
	seq_printf(m, "bytes %llu\n", bytes);
	seq_printf(m, "created %lld\n", atomic64_read(&pyshm_stats.created));
	seq_printf(m, "freed %lld\n", atomic64_read(&pyshm_stats.freed));
	seq_printf(m, "domains %lld\n", atomic64_read(&pyshm_stats.domains));
	seq_printf(m, "tokens %lld\n", atomic64_read(&pyshm_stats.tokens));
	seq_printf(m, "exports %lld\n", atomic64_read(&pyshm_stats.exports));
	seq_printf(m, "imports %lld\n", atomic64_read(&pyshm_stats.imports));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(stats);

/* debugfs is optional: without it the module works, unobserved. */
void pyshm_debugfs_init(void)
{
	debugfs_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("regions", 0444, debugfs_dir, NULL, &regions_fops);
	debugfs_create_file("stats", 0444, debugfs_dir, NULL, &stats_fops);
}

void pyshm_debugfs_uninit(void)
{
	debugfs_remove(debugfs_dir);
}
