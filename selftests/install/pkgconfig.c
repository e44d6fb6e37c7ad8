// SPDX-License-Identifier: GPL-2.0
/*
 * A program as a user of an installed libpyshm writes it: only <pyshm/pyshm.h>
 * and the flags `pkg-config --cflags --libs libpyshm` gives. It sends one
 * record through a ring in a region and reads it back.
 */
#include <stdio.h>
#include <string.h>

#include <pyshm/pyshm.h>

int main(void)
{
	static const char msg[] = "hello from an installed libpyshm";
	struct pyshm_ring *tx = NULL, *rx = NULL;
	struct pyshm_region *r = NULL;
	struct pyshm_ring_rec rec;
	uint64_t data = PYSHM_RING_MIN_DATA;
	const char *backend;
	int ret;

	ret = pyshm_region_create(pyshm_ring_bytes(data), 0, 0, &r);
	if (!ret)
		ret = pyshm_ring_init(r, 0, data, PYSHM_RING_PRODUCER, &tx);
	if (!ret)
		ret = pyshm_ring_attach(r, 0, PYSHM_RING_CONSUMER, &rx);
	if (!ret)
		ret = pyshm_ring_send(tx, msg, sizeof(msg), 0);
	if (!ret)
		ret = pyshm_ring_recv(rx, &rec, 0);
	if (!ret) {
		if (rec.len == sizeof(msg) && !memcmp(rec.data, msg, sizeof(msg)))
			printf("%s\n", (const char *)rec.data);
		else
			ret = -1;
		pyshm_ring_consume(rx, &rec);
	}
	pyshm_ring_free(rx);
	pyshm_ring_free(tx);
	pyshm_region_put(r);
	backend = pyshm_backend_name(pyshm_backend());
	printf("backend: %s\n", backend ? backend : "none");
	if (ret)
		fprintf(stderr, "pkgconfig: failed: %d\n", ret);
	return ret ? 1 : 0;
}
