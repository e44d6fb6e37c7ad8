// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: libpyshm's clone reader and walker on hostile bytes.
 * Whatever the input, pyshm_clone_verify() and the item reader must return
 * (never read out of bounds, never loop), and what verify accepts must
 * walk the same way value by value, with its tables in bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pyshm/clone.h>

static void walk_tables(const uint8_t *data, const struct pyshm_clone_info *info)
{
	struct pyshm_region_ref ref;
	size_t pos = 0, off, len;
	volatile uint8_t sink = 0;
	unsigned int role;
	uint32_t i;

	for (i = 0; i < info->nregions; i++) {
		if (pyshm_clone_get_region(data, info, i, &role, &ref) < 0 ||
		    role > PYSHM_CLONE_ROLE_MAX)
			abort();
		sink ^= ref.kind;
	}
	while (pyshm_clone_next_attachment(data, info, &pos, &off, &len) == 1) {
		if (off + len > info->len)
			abort();
		if (len)
			sink ^= data[off + len - 1];
	}
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pyshm_clone_info info;
	struct pyshm_clone_reader r;
	struct pyshm_clone_walk wk;
	struct pyshm_clone_item it;
	size_t off = ~(size_t)0;
	int ret, steps = 0;

	ret = pyshm_clone_verify(data, size, &off);
	if (ret < 0) {
		if (off > size)
			abort();
		return 0;
	}
	if (pyshm_clone_parse(data, size, &info) < 0)
		abort();		/* verify accepted what parse refuses */
	walk_tables(data, &info);

	/* A flat read of the heads must stay inside the body too. */
	pyshm_clone_reader_init(&r, &wk, data, &info);
	while (r.p < r.end && steps++ < 100000) {
		if (pyshm_clone_read(&r, &wk, &it) < 0)
			break;
		if (r.p > r.end)
			abort();
		if (it.type == PYSHM_CLONE_MEMORYVIEW) {
			uint64_t shape[PYSHM_CLONE_MAX_NDIM];

			if (pyshm_clone_mv_shape(&it, shape) < 0)
				abort();
		}
	}
	/* And a skip of the whole body lands exactly at its end. */
	pyshm_clone_reader_init(&r, &wk, data, &info);
	if (pyshm_clone_skip(&r, &wk) < 0 || r.p != r.end || wk.nobjects != info.nobjects)
		abort();
	return 0;
}
