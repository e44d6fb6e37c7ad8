/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the C benchmarks: clocks, CPU pinning, medians, and the one
 * table format every `make bench` part prints (case, pyshm, peer, ratio,
 * goal), so results read side by side.
 */
#ifndef PYSHM_BENCH_H
#define PYSHM_BENCH_H

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define REPEATS 5

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The CPUs we started with, before any pinning narrowed them. */
static cpu_set_t bench_cpus;

static inline void bench_init(void)
{
	if (sched_getaffinity(0, sizeof(bench_cpus), &bench_cpus))
		CPU_ZERO(&bench_cpus);
}

/* Pin the calling process or thread to the @cpu-th usable CPU (modulo). */
static inline void pin_cpu(int cpu)
{
	int n = CPU_COUNT(&bench_cpus), i;
	cpu_set_t set;

	if (n < 2)
		return;
	cpu %= n;
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (CPU_ISSET(i, &bench_cpus) && cpu-- == 0) {
			CPU_ZERO(&set);
			CPU_SET(i, &set);
			sched_setaffinity(0, sizeof(set), &set);
			return;
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline void table_header(const char *title)
{
	printf("\n%s\n%-58s %14s %14s %9s  %s\n", title, "case", "pyshm", "peer",
	       "ratio", "goal");
}

/*
 * One row. @ratio is pyshm/peer for times and peer/pyshm for rates, so
 * below 1 is always "pyshm is faster"; @goal says what the issue asks.
 */
static inline void table_row(const char *name, const char *ours, const char *peer,
			     double ratio, const char *goal, int met)
{
	printf("%-58s %14s %14s %8.3fx  %s  [%s]\n", name, ours, peer, ratio, goal,
	       met ? "met" : "MISSED");
	fflush(stdout);
}

static inline const char *fmt_ns(char *buf, size_t n, double ns)
{
	if (ns >= 1e6)
		snprintf(buf, n, "%.2f ms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, n, "%.2f us", ns / 1e3);
	else
		snprintf(buf, n, "%.0f ns", ns);
	return buf;
}

static inline const char *fmt_rate(char *buf, size_t n, double per_s)
{
	snprintf(buf, n, "%.2f M/s", per_s / 1e6);
	return buf;
}

#endif /* PYSHM_BENCH_H */
