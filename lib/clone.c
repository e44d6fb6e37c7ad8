// SPDX-License-Identifier: MIT
/*
 * The structured-clone wire format: the message writer's slow paths and
 * tables, and the bounds-checked reader and walker every receiver trusts
 * (Documentation/wire-format.rst). The input of a reader is hostile: every
 * length is checked against what is left before it is used, every count
 * against the bytes that could hold it, and no allocation is made here.
 */
#include <stdlib.h>
#include <string.h>

#include <pyshm/clone.h>

#include "internal.h"

/* Header offsets */
#define HDR_MAGIC	0x00
#define HDR_VERSION	0x04
#define HDR_SIZE	0x05
#define HDR_FLAGS	0x06
#define HDR_BODY_LEN	0x08
#define HDR_NOBJECTS	0x10
#define HDR_NREGIONS	0x14
#define HDR_NATTACH	0x18
#define HDR_RESV	0x1c

enum { PHASE_BODY, PHASE_REGIONS, PHASE_ATTACH, PHASE_DONE };

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

PYSHM_EXPORT int pyshm_clone_writer_init(struct pyshm_clone_writer *w,
					 void *(*realloc_fn)(void *, size_t),
					 void (*free_fn)(void *), size_t hint)
{
	memset(w, 0, sizeof(*w));
	w->realloc_fn = realloc_fn ? realloc_fn : realloc;
	w->free_fn = free_fn ? free_fn : free;
	if (hint < 256)
		hint = 256;
	w->buf = w->realloc_fn(NULL, hint);
	if (!w->buf)
		return -ENOMEM;
	w->cap = hint;
	memset(w->buf, 0, PYSHM_CLONE_HDR_SIZE);
	put_le(w->buf + HDR_MAGIC, PYSHM_CLONE_MAGIC, 4);
	w->buf[HDR_VERSION] = PYSHM_CLONE_VERSION;
	w->buf[HDR_SIZE] = PYSHM_CLONE_HDR_SIZE;
	w->len = PYSHM_CLONE_HDR_SIZE;
	w->phase = PHASE_BODY;
	return 0;
}

PYSHM_EXPORT void pyshm_clone_writer_release(struct pyshm_clone_writer *w)
{
	if (w->buf)
		w->free_fn(w->buf);
	if (w->ext)
		w->free_fn(w->ext);
	w->buf = NULL;
	w->ext = NULL;
	w->len = w->cap = w->extlen = 0;
	w->next = w->capext = 0;
}

/* Room for one more blob by reference and @head bytes before it. */
static int ext_reserve(struct pyshm_clone_writer *w, const void *p, size_t n, size_t head)
{
	struct pyshm_clone_ext *e;
	uint32_t cap;

	if (w->phase != PHASE_BODY || (!p && n) || w->next == UINT32_MAX / 2)
		return -EINVAL;
	if (w->next == w->capext) {
		cap = w->capext ? 2 * w->capext : 4;
		e = w->realloc_fn(w->ext, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		w->ext = e;
		w->capext = cap;
	}
	return pyshm_clone_reserve(w, head) < 0 ? -ENOMEM : 0;
}

static void ext_add(struct pyshm_clone_writer *w, const void *p, size_t n)
{
	w->ext[w->next++] = (struct pyshm_clone_ext){ .pos = w->len, .p = p, .n = n };
	w->extlen += n;
}

PYSHM_EXPORT int pyshm_clone_put_blob_ext(struct pyshm_clone_writer *w, uint8_t tag,
					  const void *p, size_t n)
{
	int ret = ext_reserve(w, p, n, 11);

	if (ret < 0)
		return ret;
	pyshm_clone_raw_tag(w, tag);
	pyshm_clone_raw_varint(w, n);
	ext_add(w, p, n);
	return 0;
}

PYSHM_EXPORT int pyshm_clone_put_raw_ext(struct pyshm_clone_writer *w, const void *p, size_t n)
{
	int ret = ext_reserve(w, p, n, 0);

	if (ret < 0)
		return ret;
	ext_add(w, p, n);
	return 0;
}

PYSHM_EXPORT int pyshm_clone_writer_iov(const struct pyshm_clone_writer *w,
					struct iovec *iov)
{
	size_t at = 0;
	uint32_t i;
	int n = 0;

	for (i = 0; i < w->next; i++) {
		iov[n++] = (struct iovec){ .iov_base = w->buf + at, .iov_len = w->ext[i].pos - at };
		iov[n++] = (struct iovec){ .iov_base = (void *)w->ext[i].p, .iov_len = w->ext[i].n };
		at = w->ext[i].pos;
	}
	iov[n++] = (struct iovec){ .iov_base = w->buf + at, .iov_len = w->len - at };
	return n;
}

PYSHM_EXPORT int pyshm_clone_writer_grow(struct pyshm_clone_writer *w, size_t need)
{
	size_t cap = w->cap;
	uint8_t *p;

	if (need > SIZE_MAX / 2 - w->len)
		return -ENOMEM;
	if (cap < 256)
		cap = 256;
	while (cap - w->len < need)
		cap *= 2;
	p = w->realloc_fn(w->buf, cap);
	if (!p)
		return -ENOMEM;
	w->buf = p;
	w->cap = cap;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_end_body(struct pyshm_clone_writer *w)
{
	if (w->phase != PHASE_BODY)
		return -EINVAL;
	put_le(w->buf + HDR_BODY_LEN, w->len - PYSHM_CLONE_HDR_SIZE + w->extlen, 8);
	w->phase = PHASE_REGIONS;
	return 0;
}

/* A region table entry: role, seven zero bytes, the 32-byte reference. */
static void put_entry(uint8_t *p, unsigned int role, const struct pyshm_region_ref *ref)
{
	memset(p, 0, PYSHM_CLONE_ENTRY_SIZE);
	p[0] = (uint8_t)role;
	p[8] = ref->kind;
	p[9] = ref->flags;
	put_le(p + 10, ref->resv, 2);
	put_le(p + 12, ref->pid, 4);
	put_le(p + 16, ref->id, 8);
	put_le(p + 24, ref->cookie, 8);
	put_le(p + 32, ref->max_size, 8);
}

PYSHM_EXPORT int pyshm_clone_put_region(struct pyshm_clone_writer *w, unsigned int role,
					const struct pyshm_region_ref *ref)
{
	uint8_t *p;

	if (w->phase != PHASE_REGIONS || role > PYSHM_CLONE_ROLE_MAX || !ref ||
	    w->nregions == UINT32_MAX)
		return -EINVAL;
	if (pyshm_clone_reserve(w, PYSHM_CLONE_ENTRY_SIZE) < 0)
		return -ENOMEM;
	p = w->buf + w->len;
	put_entry(p, role, ref);
	w->len += PYSHM_CLONE_ENTRY_SIZE;
	w->nregions++;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_begin_attachment(struct pyshm_clone_writer *w)
{
	if (w->phase == PHASE_REGIONS)
		w->phase = PHASE_ATTACH;
	if (w->phase != PHASE_ATTACH || w->attach_pos || w->nattach == UINT32_MAX)
		return -EINVAL;
	if (pyshm_clone_reserve(w, 4) < 0)
		return -ENOMEM;
	w->attach_pos = w->len;
	put_le(w->buf + w->len, 0, 4);
	w->len += 4;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_end_attachment(struct pyshm_clone_writer *w)
{
	size_t n;

	if (w->phase != PHASE_ATTACH || !w->attach_pos || w->len < w->attach_pos + 4)
		return -EINVAL;
	n = w->len - w->attach_pos - 4;
	if (n > UINT32_MAX)
		return -E2BIG;
	put_le(w->buf + w->attach_pos, n, 4);
	w->attach_pos = 0;
	w->nattach++;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_writer_finish(struct pyshm_clone_writer *w)
{
	int ret;

	if (w->phase == PHASE_BODY) {
		ret = pyshm_clone_end_body(w);
		if (ret < 0)
			return ret;
	}
	if (w->phase == PHASE_DONE || w->attach_pos)
		return -EINVAL;
	put_le(w->buf + HDR_NOBJECTS, w->nobjects, 4);
	put_le(w->buf + HDR_NREGIONS, w->nregions, 4);
	put_le(w->buf + HDR_NATTACH, w->nattach, 4);
	w->phase = PHASE_DONE;
	return 0;
}

/* Types whose children may lead back to them before their memo point. */
static int can_alias(unsigned int type)
{
	switch (type) {
	case PYSHM_CLONE_TUPLE:
	case PYSHM_CLONE_FROZENSET:
	case PYSHM_CLONE_TIME:
	case PYSHM_CLONE_DATETIME:
	case PYSHM_CLONE_EXCEPTION:
	case PYSHM_CLONE_REDUCE:
		return 1;
	}
	return 0;
}

PYSHM_EXPORT int pyshm_clone_patch_alias(struct pyshm_clone_writer *w, size_t tag_pos,
					 uint32_t slot)
{
	uint8_t tag;

	if (w->phase != PHASE_BODY || tag_pos < PYSHM_CLONE_HDR_SIZE || tag_pos >= w->len)
		return -EINVAL;
	tag = w->buf[tag_pos];
	if (!(tag & PYSHM_CLONE_F_MEMO) || !can_alias(tag & PYSHM_CLONE_TYPE_MASK))
		return -EINVAL;
	if (pyshm_clone_put_varint(w, slot) < 0)
		return -ENOMEM;
	w->buf[tag_pos] = (uint8_t)((tag & ~PYSHM_CLONE_F_MEMO) | PYSHM_CLONE_F_ALIAS);
	w->nobjects--;
	return 0;
}

/* ---------------------------------------------------------------- reader */

PYSHM_EXPORT int pyshm_clone_parse(const void *buf, size_t len,
				   struct pyshm_clone_info *info)
{
	const uint8_t *p = buf;
	uint64_t body_len, tables, pos;
	uint32_t i, n;

	if (!p || !info || len < PYSHM_CLONE_HDR_SIZE ||
	    get_le(p + HDR_MAGIC, 4) != PYSHM_CLONE_MAGIC)
		return -EBADMSG;
	if (p[HDR_VERSION] != PYSHM_CLONE_VERSION)
		return -EPROTO;
	if (p[HDR_SIZE] != PYSHM_CLONE_HDR_SIZE || get_le(p + HDR_FLAGS, 2) ||
	    get_le(p + HDR_RESV, 4))
		return -EBADMSG;

	memset(info, 0, sizeof(*info));
	info->version = p[HDR_VERSION];
	info->nobjects = (uint32_t)get_le(p + HDR_NOBJECTS, 4);
	info->nregions = (uint32_t)get_le(p + HDR_NREGIONS, 4);
	info->nattach = (uint32_t)get_le(p + HDR_NATTACH, 4);
	body_len = get_le(p + HDR_BODY_LEN, 8);
	/* One value at least; a memo slot takes a byte of body at least. */
	if (body_len == 0 || body_len > len - PYSHM_CLONE_HDR_SIZE ||
	    info->nobjects > body_len)
		return -EBADMSG;
	info->len = len;
	info->body_off = PYSHM_CLONE_HDR_SIZE;
	info->body_len = (size_t)body_len;
	info->regions_off = PYSHM_CLONE_HDR_SIZE + (size_t)body_len;
	tables = (uint64_t)info->nregions * PYSHM_CLONE_ENTRY_SIZE;
	if (tables > len - info->regions_off)
		return -EBADMSG;
	for (i = 0; i < info->nregions; i++) {
		const uint8_t *e = p + info->regions_off + (size_t)i * PYSHM_CLONE_ENTRY_SIZE;

		if (e[0] > PYSHM_CLONE_ROLE_MAX || get_le(e + 1, 7))
			return -EBADMSG;
	}
	info->attach_off = info->regions_off + (size_t)tables;
	pos = info->attach_off;
	for (i = 0; i < info->nattach; i++) {
		if (len - pos < 4)
			return -EBADMSG;
		n = (uint32_t)get_le(p + pos, 4);
		if (n > len - pos - 4)
			return -EBADMSG;
		pos += 4 + (uint64_t)n;
	}
	if (pos != len)
		return -EBADMSG;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_get_region(const void *buf, const struct pyshm_clone_info *info,
					uint32_t i, unsigned int *role,
					struct pyshm_region_ref *ref)
{
	const uint8_t *e;

	if (i >= info->nregions)
		return -ERANGE;
	e = (const uint8_t *)buf + info->regions_off + (size_t)i * PYSHM_CLONE_ENTRY_SIZE;
	if (role)
		*role = e[0];
	ref->kind = e[8];
	ref->flags = e[9];
	ref->resv = (uint16_t)get_le(e + 10, 2);
	ref->pid = (uint32_t)get_le(e + 12, 4);
	ref->id = get_le(e + 16, 8);
	ref->cookie = get_le(e + 24, 8);
	ref->max_size = get_le(e + 32, 8);
	return 0;
}

PYSHM_EXPORT int pyshm_clone_set_region(void *buf, const struct pyshm_clone_info *info,
					uint32_t i, const struct pyshm_region_ref *ref)
{
	uint8_t *e;

	if (!buf || !info || !ref)
		return -EINVAL;
	if (i >= info->nregions)
		return -ERANGE;
	e = (uint8_t *)buf + info->regions_off + (size_t)i * PYSHM_CLONE_ENTRY_SIZE;
	put_entry(e, e[0], ref);
	return 0;
}

PYSHM_EXPORT int pyshm_clone_next_attachment(const void *buf,
					     const struct pyshm_clone_info *info,
					     size_t *pos, size_t *off, size_t *len)
{
	const uint8_t *p = buf;
	size_t at = *pos ? *pos : info->attach_off;
	uint32_t n;

	if (at == info->len)
		return 0;
	if (at < info->attach_off || at > info->len || info->len - at < 4)
		return -EBADMSG;
	n = (uint32_t)get_le(p + at, 4);
	if (n > info->len - at - 4)
		return -EBADMSG;
	*off = at + 4;
	*len = n;
	*pos = at + 4 + n;
	return 1;
}

PYSHM_EXPORT void pyshm_clone_reader_init(struct pyshm_clone_reader *r,
					  struct pyshm_clone_walk *wk, const void *buf,
					  const struct pyshm_clone_info *info)
{
	r->p = (const uint8_t *)buf + info->body_off;
	r->end = r->p + info->body_len;
	memset(wk, 0, sizeof(*wk));
	wk->max_objects = info->nobjects;
	wk->nregions = info->nregions;
	wk->nattach = info->nattach;
}

PYSHM_EXPORT int pyshm_clone_utf8_check(const uint8_t *p, size_t n, int surrogates)
{
	const uint8_t *end = p + n;

	while (p < end) {
		uint8_t c = *p;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			if (end - p < 2 || (p[1] & 0xc0) != 0x80)
				return -EILSEQ;
			p += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			if (end - p < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
				return -EILSEQ;
			if (c == 0xe0 && p[1] < 0xa0)		/* overlong */
				return -EILSEQ;
			if (c == 0xed && p[1] >= 0xa0 && !surrogates)
				return -EILSEQ;
			p += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			if (end - p < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
			    (p[3] & 0xc0) != 0x80)
				return -EILSEQ;
			if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
				return -EILSEQ;
			p += 4;
		} else {
			return -EILSEQ;
		}
	}
	return 0;
}

static int days_in_month(uint32_t year, uint32_t month)
{
	static const uint8_t days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
		return 29;
	return days[month - 1];
}

static int get_blob(struct pyshm_clone_reader *r, const uint8_t **data, size_t *len)
{
	uint64_t n;

	if (pyshm_clone_get_varint(r, &n) < 0 || pyshm_clone_get_raw(r, n, data) < 0)
		return -EBADMSG;
	*len = (size_t)n;
	return 0;
}

static int get_date(struct pyshm_clone_reader *r, struct pyshm_clone_item *it)
{
	uint64_t year, month, day;

	if (pyshm_clone_get_le(r, 2, &year) < 0 || pyshm_clone_get_le(r, 1, &month) < 0 ||
	    pyshm_clone_get_le(r, 1, &day) < 0)
		return -EBADMSG;
	if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 ||
	    day > (uint64_t)days_in_month((uint32_t)year, (uint32_t)month))
		return -EBADMSG;
	it->v.dt.year = (uint32_t)year;
	it->v.dt.month = (uint32_t)month;
	it->v.dt.day = (uint32_t)day;
	return 0;
}

static int get_time(struct pyshm_clone_reader *r, struct pyshm_clone_item *it)
{
	uint64_t h, m, s, us, flags;

	if (pyshm_clone_get_le(r, 1, &h) < 0 || pyshm_clone_get_le(r, 1, &m) < 0 ||
	    pyshm_clone_get_le(r, 1, &s) < 0 || pyshm_clone_get_le(r, 3, &us) < 0 ||
	    pyshm_clone_get_le(r, 1, &flags) < 0)
		return -EBADMSG;
	if (h > 23 || m > 59 || s > 59 || us > 999999 ||
	    flags & ~(uint64_t)(PYSHM_CLONE_DT_FOLD | PYSHM_CLONE_DT_TZ))
		return -EBADMSG;
	it->v.dt.hour = (uint32_t)h;
	it->v.dt.minute = (uint32_t)m;
	it->v.dt.second = (uint32_t)s;
	it->v.dt.us = (uint32_t)us;
	it->flags = (uint8_t)flags;
	return 0;
}

/* Days, seconds and microseconds, normalised as timedelta keeps them. */
static int get_delta(struct pyshm_clone_reader *r, struct pyshm_clone_item *it)
{
	uint64_t days, s, us;

	if (pyshm_clone_get_varint(r, &days) < 0 || pyshm_clone_get_varint(r, &s) < 0 ||
	    pyshm_clone_get_varint(r, &us) < 0)
		return -EBADMSG;
	it->v.td.days = pyshm_clone_unzigzag(days);
	if (it->v.td.days < -999999999 || it->v.td.days > 999999999 || s >= 86400 ||
	    us >= 1000000)
		return -EBADMSG;
	it->v.td.seconds = (uint32_t)s;
	it->v.td.us = (uint32_t)us;
	return 0;
}

static int array_itemsize(uint8_t typecode)
{
	switch (typecode) {
	case 'b': case 'B':
		return 1;
	case 'h': case 'H': case 'e':
		return 2;
	case 'i': case 'I': case 'f': case 'u': case 'w':
		return 4;
	case 'l': case 'L': case 'q': case 'Q': case 'd': case 'F':
		return 8;
	case 'D':
		return 16;
	}
	return 0;
}

static int get_memoryview(struct pyshm_clone_reader *r, struct pyshm_clone_item *it)
{
	uint64_t flags, ndim, dim, items = 1, itemsize;
	const uint8_t *fmt, *data;
	size_t fmt_len, len, i;

	if (pyshm_clone_get_le(r, 1, &flags) < 0 || flags & ~(uint64_t)PYSHM_CLONE_MV_READONLY ||
	    get_blob(r, &fmt, &fmt_len) < 0 || fmt_len < 1 || fmt_len > PYSHM_CLONE_MAX_FORMAT)
		return -EBADMSG;
	for (i = 0; i < fmt_len; i++)
		if (fmt[i] < 0x21 || fmt[i] > 0x7e)
			return -EBADMSG;
	if (pyshm_clone_get_varint(r, &ndim) < 0 || ndim > PYSHM_CLONE_MAX_NDIM)
		return -EBADMSG;
	it->v.mv.shape = r->p;
	for (i = 0; i < ndim; i++) {
		if (pyshm_clone_get_varint(r, &dim) < 0)
			return -EBADMSG;
		if (dim && items > UINT64_MAX / dim)
			return -EBADMSG;
		items *= dim;
	}
	if (pyshm_clone_get_varint(r, &itemsize) < 0 || itemsize < 1 ||
	    get_blob(r, &data, &len) < 0)
		return -EBADMSG;
	if (items && itemsize > UINT64_MAX / items)
		return -EBADMSG;
	if (items * itemsize != len)
		return -EBADMSG;
	it->flags = (uint8_t)flags;
	it->v.mv.format = fmt;
	it->v.mv.format_len = fmt_len;
	it->v.mv.ndim = ndim;
	it->v.mv.itemsize = itemsize;
	it->v.mv.data = data;
	it->v.mv.len = len;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_mv_shape(const struct pyshm_clone_item *it, uint64_t *shape)
{
	/* The shape was checked when read; it lies before the data. */
	struct pyshm_clone_reader r = { .p = it->v.mv.shape, .end = it->v.mv.data };
	uint64_t i;

	for (i = 0; i < it->v.mv.ndim; i++)
		if (pyshm_clone_get_varint(&r, &shape[i]) < 0)
			return -EBADMSG;
	return 0;
}

/* A view's strides (after its shape): the bytes it spans below and above
 * its first element, each at most PYSHM_REGION_SIZE_MAX. */
static int get_nd_strides(struct pyshm_clone_reader *r, struct pyshm_clone_item *it,
			  uint64_t *lo, uint64_t *hi)
{
	struct pyshm_clone_reader shape = { .p = it->v.nd.shape, .end = r->p };
	uint64_t i, v, dim = 0, mag;
	int64_t stride;

	*lo = *hi = 0;
	for (i = 0; i < it->v.nd.ndim; i++) {
		if (pyshm_clone_get_varint(r, &v) < 0)
			return -EBADMSG;
		pyshm_clone_get_varint(&shape, &dim);
		stride = pyshm_clone_unzigzag(v);
		if (stride < -(int64_t)PYSHM_REGION_SIZE_MAX ||
		    stride > (int64_t)PYSHM_REGION_SIZE_MAX)
			return -EBADMSG;
		if (!it->v.nd.count || dim < 2)
			continue;
		mag = (uint64_t)(stride < 0 ? -stride : stride);
		if (mag > PYSHM_REGION_SIZE_MAX / (dim - 1))
			return -EBADMSG;
		if (stride < 0)
			*lo += mag * (dim - 1);
		else
			*hi += mag * (dim - 1);
		if (*lo > PYSHM_REGION_SIZE_MAX || *hi > PYSHM_REGION_SIZE_MAX)
			return -EBADMSG;
	}
	return 0;
}

/*
 * The head of an NDARRAY*: flags, the shape (and a view's strides), the
 * item size, then a view's offset or an array's data. The element count
 * is at most PYSHM_REGION_SIZE_MAX, and so are a view's extent and an
 * array's bytes (which must be exactly count * itemsize).
 */
static int get_nd_head(struct pyshm_clone_reader *r, struct pyshm_clone_item *it)
{
	uint64_t flags, ndim, dim, count = 1, lo = 0, hi = 0, v, i;
	uint64_t allowed = it->type == PYSHM_CLONE_NDARRAY_VIEW ? PYSHM_CLONE_ND_READONLY :
			   PYSHM_CLONE_ND_FORTRAN;

	if (pyshm_clone_get_le(r, 1, &flags) < 0 || flags & ~allowed ||
	    pyshm_clone_get_varint(r, &ndim) < 0 || ndim > PYSHM_CLONE_MAX_NDIM)
		return -EBADMSG;
	it->flags = (uint8_t)flags;
	it->v.nd.ndim = ndim;
	it->v.nd.shape = r->p;
	for (i = 0; i < ndim; i++) {
		if (pyshm_clone_get_varint(r, &dim) < 0 || dim > PYSHM_REGION_SIZE_MAX ||
		    (dim && count > PYSHM_REGION_SIZE_MAX / dim))
			return -EBADMSG;
		count *= dim;
	}
	it->v.nd.count = count;
	it->v.nd.itemsize = 0;
	it->v.nd.data = NULL;
	it->v.nd.len = 0;
	it->v.nd.byte_offset = it->v.nd.lo = it->v.nd.hi = 0;
	if (it->type == PYSHM_CLONE_NDARRAY_OBJECT)
		return 0;
	if (it->type == PYSHM_CLONE_NDARRAY_VIEW && get_nd_strides(r, it, &lo, &hi) < 0)
		return -EBADMSG;
	if (pyshm_clone_get_varint(r, &it->v.nd.itemsize) < 0 ||
	    it->v.nd.itemsize > PYSHM_REGION_SIZE_MAX)
		return -EBADMSG;
	if (it->type == PYSHM_CLONE_NDARRAY_VIEW) {
		/* Its elements lie in [offset - lo, offset + hi + itemsize). */
		if (pyshm_clone_get_varint(r, &it->v.nd.byte_offset) < 0 ||
		    it->v.nd.byte_offset > PYSHM_REGION_SIZE_MAX || it->v.nd.byte_offset < lo)
			return -EBADMSG;
		it->v.nd.lo = it->v.nd.byte_offset - lo;
		it->v.nd.hi = count && it->v.nd.itemsize ?
			it->v.nd.byte_offset + hi + it->v.nd.itemsize : it->v.nd.lo;
		return it->v.nd.hi > PYSHM_REGION_SIZE_MAX ? -EBADMSG : 0;
	}
	/* NDARRAY: padding (to align the data), then the data. */
	if ((it->v.nd.itemsize && count > PYSHM_REGION_SIZE_MAX / it->v.nd.itemsize) ||
	    pyshm_clone_get_le(r, 1, &v) < 0 || v > PYSHM_CLONE_ND_MAX_PAD ||
	    pyshm_clone_get_raw(r, v, &it->v.nd.data) < 0 ||
	    get_blob(r, &it->v.nd.data, &it->v.nd.len) < 0 ||
	    it->v.nd.len != count * it->v.nd.itemsize)
		return -EBADMSG;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_nd_shape(const struct pyshm_clone_item *it, uint64_t *shape,
				      int64_t *strides)
{
	/* Checked when read: the shape, then a view's strides (at most ten
	 * bytes a varint). */
	struct pyshm_clone_reader r = {
		.p = it->v.nd.shape, .end = it->v.nd.shape + 20 * it->v.nd.ndim,
	};
	uint64_t i, v = 0;

	for (i = 0; i < it->v.nd.ndim; i++)
		pyshm_clone_get_varint(&r, &shape[i]);
	for (i = 0; strides && i < it->v.nd.ndim; i++) {
		pyshm_clone_get_varint(&r, &v);
		strides[i] = pyshm_clone_unzigzag(v);
	}
	return 0;
}

/* Children are values of at least one byte: a count can't exceed that. */
static int get_count(struct pyshm_clone_reader *r, struct pyshm_clone_item *it,
		     unsigned int per_item)
{
	uint64_t n;

	if (pyshm_clone_get_varint(r, &n) < 0 ||
	    n > (uint64_t)(r->end - r->p) / per_item)
		return -EBADMSG;
	it->v.count = n;
	return 0;
}

/* The element size of a TYPED_ARRAY type, 0 for none. */
static uint32_t ta_elsize(uint64_t type)
{
	switch (type) {
	case PYSHM_CLONE_TA_INT8:
	case PYSHM_CLONE_TA_UINT8:
	case PYSHM_CLONE_TA_UINT8_CLAMPED:
		return 1;
	case PYSHM_CLONE_TA_INT16:
	case PYSHM_CLONE_TA_UINT16:
		return 2;
	case PYSHM_CLONE_TA_INT32:
	case PYSHM_CLONE_TA_UINT32:
	case PYSHM_CLONE_TA_FLOAT32:
		return 4;
	case PYSHM_CLONE_TA_INT64:
	case PYSHM_CLONE_TA_UINT64:
	case PYSHM_CLONE_TA_FLOAT64:
		return 8;
	}
	return 0;
}

/* Needs pyshm_clone_finish() after its children (or callable and args)? */
static int needs_finish(const struct pyshm_clone_item *it)
{
	switch (it->type) {
	case PYSHM_CLONE_TUPLE:
	case PYSHM_CLONE_FROZENSET:
	case PYSHM_CLONE_FRACTION:
	case PYSHM_CLONE_TYPED_ARRAY:
	case PYSHM_CLONE_SHARED:
	case PYSHM_CLONE_EXCEPTION:
	case PYSHM_CLONE_REDUCE:
	case PYSHM_CLONE_NDARRAY:
	case PYSHM_CLONE_NDARRAY_VIEW:
		return 1;
	case PYSHM_CLONE_TIME:
	case PYSHM_CLONE_DATETIME:
		return !!(it->flags & PYSHM_CLONE_DT_TZ);
	}
	return 0;
}

static int may_memo(unsigned int type)
{
	switch (type) {
	case PYSHM_CLONE_NONE:
	case PYSHM_CLONE_FALSE:
	case PYSHM_CLONE_TRUE:
	case PYSHM_CLONE_REF:
	case PYSHM_CLONE_PORT:
	case PYSHM_CLONE_END:
		return 0;
	}
	return 1;
}

static int assign_slot(struct pyshm_clone_walk *wk, struct pyshm_clone_item *it)
{
	if (wk->nobjects >= wk->max_objects)
		return -EBADMSG;
	it->slot = wk->nobjects++;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_read(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
				  struct pyshm_clone_item *it)
{
	uint64_t v = 0;
	uint8_t tag;
	size_t n;
	int ret = 0;

	if (pyshm_clone_get_u8(r, &tag) < 0)
		return -EBADMSG;
	it->tag = tag;
	it->type = tag & PYSHM_CLONE_TYPE_MASK;
	it->flags = 0;
	it->slot = 0;
	if (it->type == 0 || it->type > PYSHM_CLONE_TYPE_MAX ||
	    (tag & PYSHM_CLONE_F_MEMO && (tag & PYSHM_CLONE_F_ALIAS || !may_memo(it->type))) ||
	    (tag & PYSHM_CLONE_F_ALIAS && !can_alias(it->type)))
		return -EBADMSG;

	switch (it->type) {
	case PYSHM_CLONE_NONE:
	case PYSHM_CLONE_FALSE:
	case PYSHM_CLONE_TRUE:
	case PYSHM_CLONE_END:
		break;
	case PYSHM_CLONE_INT:
		ret = pyshm_clone_get_varint(r, &v);
		it->v.i = pyshm_clone_unzigzag(v);
		break;
	case PYSHM_CLONE_BIGINT:
		ret = get_blob(r, &it->v.b.data, &it->v.b.len);
		if (!ret && it->v.b.len == 0)
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_FLOAT:
		ret = pyshm_clone_get_f64(r, &it->v.f);
		break;
	case PYSHM_CLONE_COMPLEX:
		ret = pyshm_clone_get_f64(r, &it->v.c[0]);
		if (!ret)
			ret = pyshm_clone_get_f64(r, &it->v.c[1]);
		break;
	case PYSHM_CLONE_STR:
	case PYSHM_CLONE_STR_SURROGATE:
		ret = get_blob(r, &it->v.b.data, &it->v.b.len);
		if (!ret && !(wk->flags & PYSHM_CLONE_WALK_NO_UTF8) &&
		    pyshm_clone_utf8_check(it->v.b.data, it->v.b.len,
					   it->type == PYSHM_CLONE_STR_SURROGATE) < 0)
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_BYTES:
	case PYSHM_CLONE_BYTEARRAY:
		ret = get_blob(r, &it->v.b.data, &it->v.b.len);
		break;
	case PYSHM_CLONE_LIST:
	case PYSHM_CLONE_TUPLE:
	case PYSHM_CLONE_SET:
	case PYSHM_CLONE_FROZENSET:
		ret = get_count(r, it, 1);
		break;
	case PYSHM_CLONE_DICT:
		ret = get_count(r, it, 2);
		break;
	case PYSHM_CLONE_REF:
		ret = pyshm_clone_get_varint(r, &it->v.index);
		if (!ret && it->v.index >= wk->nobjects)
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_DATE:
		ret = get_date(r, it);
		break;
	case PYSHM_CLONE_TIME:
		ret = get_time(r, it);
		break;
	case PYSHM_CLONE_DATETIME:
		ret = get_date(r, it);
		if (!ret)
			ret = get_time(r, it);
		break;
	case PYSHM_CLONE_TIMEDELTA:
		ret = get_delta(r, it);
		break;
	case PYSHM_CLONE_TIMEZONE: {
		int64_t us;

		ret = get_delta(r, it);
		if (!ret)
			ret = pyshm_clone_get_le(r, 1, &v);
		if (ret)
			break;
		/* timezone() wants -24h < offset < 24h: days is -1 or 0. */
		if (v & ~(uint64_t)PYSHM_CLONE_TZ_NAME || it->v.td.days < -1 || it->v.td.days > 0)
			return -EBADMSG;
		us = it->v.td.days * 86400000000LL + it->v.td.seconds * 1000000LL + it->v.td.us;
		if (us <= -86400000000LL)
			return -EBADMSG;
		it->flags = (uint8_t)v;
		it->v.td.name = NULL;
		it->v.td.name_len = 0;
		if (v & PYSHM_CLONE_TZ_NAME) {
			ret = get_blob(r, &it->v.td.name, &it->v.td.name_len);
			if (!ret && !(wk->flags & PYSHM_CLONE_WALK_NO_UTF8) &&
			    pyshm_clone_utf8_check(it->v.td.name, it->v.td.name_len, 1) < 0)
				ret = -EBADMSG;
		}
		break;
	}
	case PYSHM_CLONE_DECIMAL:
		ret = get_blob(r, &it->v.b.data, &it->v.b.len);
		if (!ret && it->v.b.len == 0)
			ret = -EBADMSG;
		for (n = 0; !ret && n < it->v.b.len; n++)
			if (it->v.b.data[n] < 0x21 || it->v.b.data[n] > 0x7e)
				ret = -EBADMSG;
		break;
	case PYSHM_CLONE_FRACTION:
		break;
	case PYSHM_CLONE_MEMORYVIEW:
		ret = get_memoryview(r, it);
		break;
	case PYSHM_CLONE_ARRAY:
		ret = pyshm_clone_get_le(r, 1, &v);
		if (!ret)
			ret = get_blob(r, &it->v.arr.data, &it->v.arr.len);
		if (ret)
			break;
		it->v.arr.typecode = (uint8_t)v;
		if (!array_itemsize(it->v.arr.typecode) ||
		    it->v.arr.len % (size_t)array_itemsize(it->v.arr.typecode))
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_EXCEPTION:
		ret = pyshm_clone_get_le(r, 1, &v);
		if (!ret && v & ~(uint64_t)PYSHM_CLONE_EXC_ALL)
			ret = -EBADMSG;
		it->flags = (uint8_t)v;
		break;
	case PYSHM_CLONE_REDUCE:
		ret = pyshm_clone_get_le(r, 1, &v);
		if (!ret && v & ~(uint64_t)PYSHM_CLONE_RED_ALL)
			ret = -EBADMSG;
		it->flags = (uint8_t)v;
		break;
	case PYSHM_CLONE_GLOBAL:
		ret = get_blob(r, &it->v.global.module, &it->v.global.module_len);
		if (!ret)
			ret = get_blob(r, &it->v.global.qualname, &it->v.global.qualname_len);
		if (ret)
			break;
		if (!it->v.global.module_len || !it->v.global.qualname_len ||
		    pyshm_clone_utf8_check(it->v.global.module, it->v.global.module_len, 0) < 0 ||
		    pyshm_clone_utf8_check(it->v.global.qualname, it->v.global.qualname_len, 0) < 0)
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_SAB:
	case PYSHM_CLONE_SHARED:
		ret = pyshm_clone_get_varint(r, &it->v.index);
		if (!ret && it->v.index >= wk->nregions)
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_PORT:
		ret = pyshm_clone_get_varint(r, &it->v.index);
		if (!ret && it->v.index >= wk->nattach)
			ret = -EBADMSG;
		break;
	case PYSHM_CLONE_TYPED_ARRAY: {
		uint64_t type, off, len;

		ret = pyshm_clone_get_le(r, 1, &type);
		if (!ret)
			ret = pyshm_clone_get_varint(r, &off);
		if (!ret)
			ret = pyshm_clone_get_varint(r, &len);
		if (ret)
			break;
		it->v.ta.type = (uint8_t)type;
		it->v.ta.elsize = ta_elsize(type);
		it->v.ta.byte_offset = off;
		it->v.ta.length = pyshm_clone_unzigzag(len);
		if (!it->v.ta.elsize || off % it->v.ta.elsize || off > PYSHM_REGION_SIZE_MAX ||
		    it->v.ta.length < -1 || it->v.ta.length > (int64_t)PYSHM_REGION_SIZE_MAX)
			ret = -EBADMSG;
		break;
	}
	case PYSHM_CLONE_ARRAYBUFFER:
		ret = pyshm_clone_get_le(r, 1, &v);
		if (ret)
			break;
		it->v.ab.form = (uint8_t)v;
		it->v.ab.index = 0;
		it->v.ab.data = NULL;
		it->v.ab.len = 0;
		if (v == PYSHM_CLONE_AB_COPY) {
			ret = get_blob(r, &it->v.ab.data, &it->v.ab.len);
		} else if (v == PYSHM_CLONE_AB_MOVED) {
			ret = pyshm_clone_get_varint(r, &it->v.ab.index);
			if (!ret && it->v.ab.index >= wk->nregions)
				ret = -EBADMSG;
		} else {
			ret = -EBADMSG;
		}
		break;
	case PYSHM_CLONE_NDARRAY:
	case PYSHM_CLONE_NDARRAY_VIEW:
		ret = get_nd_head(r, it);
		break;
	case PYSHM_CLONE_NDARRAY_OBJECT:
		/* Its elements follow: a byte each at least. */
		ret = get_nd_head(r, it);
		if (!ret && it->v.nd.count > (uint64_t)(r->end - r->p))
			ret = -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (ret < 0)
		return -EBADMSG;
	if (it->tag & PYSHM_CLONE_F_ALIAS && !needs_finish(it))
		return -EBADMSG;
	if (it->tag & PYSHM_CLONE_F_MEMO && !needs_finish(it))
		return assign_slot(wk, it);
	return 0;
}

PYSHM_EXPORT int pyshm_clone_finish(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
				    struct pyshm_clone_item *it)
{
	uint64_t slot;

	if (!needs_finish(it))
		return 0;
	if (it->tag & PYSHM_CLONE_F_ALIAS) {
		if (pyshm_clone_get_varint(r, &slot) < 0 || slot >= wk->nobjects)
			return -EBADMSG;
		it->slot = (uint32_t)slot;
		return 1;
	}
	if (it->tag & PYSHM_CLONE_F_MEMO)
		return assign_slot(wk, it);
	return 0;
}

static int skip_value(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk);

/* A child that must be one of two types (FRACTION's ints, TYPED_ARRAY's
 * buffer, SHARED's type). */
static int skip_typed(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
		      unsigned int a, unsigned int b)
{
	struct pyshm_clone_item it;
	int ret;

	if (r->p == r->end)
		return -EBADMSG;
	ret = (*r->p & PYSHM_CLONE_TYPE_MASK);
	if ((unsigned int)ret != a && (unsigned int)ret != b)
		return -EBADMSG;
	if (ret == PYSHM_CLONE_INT || ret == PYSHM_CLONE_BIGINT) {
		if (*r->p & PYSHM_CLONE_F_MEMO)
			return -EBADMSG;
		return pyshm_clone_read(r, wk, &it);
	}
	return skip_value(r, wk);
}

/* Values up to an END: REDUCE list items (@per == 1), dict items (2). */
static int skip_until_end(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
			  int per)
{
	int i, ret;

	for (;;) {
		if (r->p == r->end)
			return -EBADMSG;
		if (*r->p == PYSHM_CLONE_END) {
			r->p++;
			return 0;
		}
		for (i = 0; i < per; i++) {
			ret = skip_value(r, wk);
			if (ret < 0)
				return ret;
		}
	}
}

static int skip_children(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
			 uint64_t n)
{
	int ret;

	while (n--) {
		ret = skip_value(r, wk);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int skip_value(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk)
{
	struct pyshm_clone_item it;
	int ret;

	if (++wk->depth > PYSHM_CLONE_MAX_DEPTH)
		return -ELOOP;
	ret = pyshm_clone_read(r, wk, &it);
	if (ret < 0)
		return ret;
	switch (it.type) {
	case PYSHM_CLONE_END:
		return -EBADMSG;
	case PYSHM_CLONE_LIST:
	case PYSHM_CLONE_TUPLE:
	case PYSHM_CLONE_SET:
	case PYSHM_CLONE_FROZENSET:
		ret = skip_children(r, wk, it.v.count);
		break;
	case PYSHM_CLONE_DICT:
		ret = skip_children(r, wk, 2 * it.v.count);
		break;
	case PYSHM_CLONE_TIME:
	case PYSHM_CLONE_DATETIME:
		if (it.flags & PYSHM_CLONE_DT_TZ)
			ret = skip_value(r, wk);
		break;
	case PYSHM_CLONE_FRACTION:
		ret = skip_typed(r, wk, PYSHM_CLONE_INT, PYSHM_CLONE_BIGINT);
		if (!ret)
			ret = skip_typed(r, wk, PYSHM_CLONE_INT, PYSHM_CLONE_BIGINT);
		break;
	case PYSHM_CLONE_TYPED_ARRAY:
		/* A SAB, an ARRAYBUFFER or a REF to either. */
		if (r->p < r->end && (*r->p & PYSHM_CLONE_TYPE_MASK) == PYSHM_CLONE_ARRAYBUFFER)
			ret = skip_value(r, wk);
		else
			ret = skip_typed(r, wk, PYSHM_CLONE_SAB, PYSHM_CLONE_REF);
		break;
	case PYSHM_CLONE_SHARED:
		ret = skip_typed(r, wk, PYSHM_CLONE_GLOBAL, PYSHM_CLONE_REF);
		break;
	case PYSHM_CLONE_NDARRAY:
		ret = skip_value(r, wk);		/* the dtype */
		break;
	case PYSHM_CLONE_NDARRAY_OBJECT:
		ret = skip_children(r, wk, it.v.nd.count);
		break;
	case PYSHM_CLONE_NDARRAY_VIEW:
		ret = skip_value(r, wk);
		if (!ret)
			ret = skip_typed(r, wk, PYSHM_CLONE_SAB, PYSHM_CLONE_REF);
		break;
	case PYSHM_CLONE_EXCEPTION:
	case PYSHM_CLONE_REDUCE:
		/* The callable (unless NEWOBJ) and the arguments. */
		if (!(it.type == PYSHM_CLONE_REDUCE && it.flags & PYSHM_CLONE_RED_NEWOBJ))
			ret = skip_value(r, wk);
		if (!ret)
			ret = skip_typed(r, wk, PYSHM_CLONE_TUPLE, PYSHM_CLONE_REF);
		if (ret)
			break;
		ret = pyshm_clone_finish(r, wk, &it);
		if (ret == 1) {		/* an alias: nothing more of it */
			wk->depth--;
			return 0;
		}
		if (ret < 0)
			break;
		if (it.type == PYSHM_CLONE_EXCEPTION) {
			static const uint8_t parts[] = {
				PYSHM_CLONE_EXC_STATE, PYSHM_CLONE_EXC_CAUSE,
				PYSHM_CLONE_EXC_CONTEXT, PYSHM_CLONE_EXC_TBTEXT,
			};
			unsigned int i;

			for (i = 0; !ret && i < sizeof(parts); i++)
				if (it.flags & parts[i])
					ret = parts[i] == PYSHM_CLONE_EXC_TBTEXT ?
						skip_typed(r, wk, PYSHM_CLONE_STR,
							   PYSHM_CLONE_STR_SURROGATE) :
						skip_value(r, wk);
		} else {
			if (it.flags & PYSHM_CLONE_RED_LISTITEMS)
				ret = skip_until_end(r, wk, 1);
			if (!ret && it.flags & PYSHM_CLONE_RED_DICTITEMS)
				ret = skip_until_end(r, wk, 2);
			if (!ret && it.flags & PYSHM_CLONE_RED_STATE)
				ret = skip_value(r, wk);
			if (!ret && it.flags & PYSHM_CLONE_RED_SETTER)
				ret = skip_value(r, wk);
		}
		wk->depth--;
		return ret;
	default:
		break;
	}
	if (ret < 0)
		return ret;
	ret = pyshm_clone_finish(r, wk, &it);
	if (ret < 0)
		return ret;
	wk->depth--;
	return 0;
}

PYSHM_EXPORT int pyshm_clone_skip(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk)
{
	return skip_value(r, wk);
}

PYSHM_EXPORT int pyshm_clone_verify(const void *buf, size_t len, size_t *err_off)
{
	struct pyshm_clone_info info;
	struct pyshm_clone_reader r;
	struct pyshm_clone_walk wk;
	int ret;

	if (err_off)
		*err_off = 0;
	ret = pyshm_clone_parse(buf, len, &info);
	if (ret < 0)
		return ret;
	pyshm_clone_reader_init(&r, &wk, buf, &info);
	ret = skip_value(&r, &wk);
	if (!ret && (r.p != r.end || wk.nobjects != info.nobjects))
		ret = -EBADMSG;
	if (ret < 0 && err_off)
		*err_off = (size_t)(r.p - (const uint8_t *)buf);
	return ret;
}

PYSHM_EXPORT const char *pyshm_clone_type_name(unsigned int type)
{
	static const char *const names[] = {
		[PYSHM_CLONE_NONE] = "None",
		[PYSHM_CLONE_FALSE] = "False",
		[PYSHM_CLONE_TRUE] = "True",
		[PYSHM_CLONE_INT] = "int",
		[PYSHM_CLONE_BIGINT] = "bigint",
		[PYSHM_CLONE_FLOAT] = "float",
		[PYSHM_CLONE_COMPLEX] = "complex",
		[PYSHM_CLONE_STR] = "str",
		[PYSHM_CLONE_STR_SURROGATE] = "str (surrogates)",
		[PYSHM_CLONE_BYTES] = "bytes",
		[PYSHM_CLONE_BYTEARRAY] = "bytearray",
		[PYSHM_CLONE_LIST] = "list",
		[PYSHM_CLONE_TUPLE] = "tuple",
		[PYSHM_CLONE_DICT] = "dict",
		[PYSHM_CLONE_SET] = "set",
		[PYSHM_CLONE_FROZENSET] = "frozenset",
		[PYSHM_CLONE_REF] = "ref",
		[PYSHM_CLONE_DATE] = "date",
		[PYSHM_CLONE_TIME] = "time",
		[PYSHM_CLONE_DATETIME] = "datetime",
		[PYSHM_CLONE_TIMEDELTA] = "timedelta",
		[PYSHM_CLONE_TIMEZONE] = "timezone",
		[PYSHM_CLONE_DECIMAL] = "Decimal",
		[PYSHM_CLONE_FRACTION] = "Fraction",
		[PYSHM_CLONE_MEMORYVIEW] = "memoryview",
		[PYSHM_CLONE_ARRAY] = "array",
		[PYSHM_CLONE_EXCEPTION] = "exception",
		[PYSHM_CLONE_GLOBAL] = "global",
		[PYSHM_CLONE_REDUCE] = "reduce",
		[PYSHM_CLONE_SAB] = "SharedArrayBuffer",
		[PYSHM_CLONE_TYPED_ARRAY] = "typed array",
		[PYSHM_CLONE_PORT] = "MessagePort",
		[PYSHM_CLONE_SHARED] = "shared payload",
		[PYSHM_CLONE_END] = "end",
		[PYSHM_CLONE_ARRAYBUFFER] = "ArrayBuffer",
		[PYSHM_CLONE_NDARRAY] = "ndarray",
		[PYSHM_CLONE_NDARRAY_OBJECT] = "ndarray (objects)",
		[PYSHM_CLONE_NDARRAY_VIEW] = "ndarray (view of a SharedArrayBuffer)",
	};

	if (type >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[type];
}
