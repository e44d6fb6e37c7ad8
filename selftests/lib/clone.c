// SPDX-License-Identifier: GPL-2.0
/*
 * Clone wire format tests: the writer's output reads back value by value;
 * the header, tables and body are checked byte for byte against
 * Documentation/wire-format.rst; the reader and walker refuse every kind of
 * malformed input (truncation, lying lengths, forward references, bad
 * tags, deep nesting) with -EBADMSG/-ELOOP, and survive every single-byte
 * corruption of a message.
 */
#include <stdlib.h>

#include "kselftest_harness.h"
#include "common.h"

/* A message under construction, freed by the fixture. */
FIXTURE(clone) {
	struct pyshm_clone_writer w;
};

FIXTURE_SETUP(clone)
{
	ASSERT_EQ(0, pyshm_clone_writer_init(&self->w, NULL, NULL, 0));
}

FIXTURE_TEARDOWN(clone)
{
	pyshm_clone_writer_release(&self->w);
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* The body of a finished message starts at byte 32. */
#define BODY(w) ((w)->buf + PYSHM_CLONE_HDR_SIZE)

static int finish(struct pyshm_clone_writer *w)
{
	return pyshm_clone_writer_finish(w);
}

/* Reader over a finished message. */
static int open_msg(struct pyshm_clone_writer *w, struct pyshm_clone_info *info,
		    struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk)
{
	int ret = pyshm_clone_parse(w->buf, w->len, info);

	if (ret == 0)
		pyshm_clone_reader_init(r, wk, w->buf, info);
	return ret;
}

TEST_F(clone, header_layout)
{
	struct pyshm_clone_writer *w = &self->w;

	ASSERT_EQ(0, pyshm_clone_put_none(w));
	ASSERT_EQ(0, finish(w));
	ASSERT_EQ(33, w->len);
	EXPECT_EQ(0, memcmp(w->buf, "PYCL", 4));
	EXPECT_EQ(PYSHM_CLONE_VERSION, w->buf[4]);
	EXPECT_EQ(32, w->buf[5]);
	EXPECT_EQ(0, le(w->buf + 6, 2));		/* flags */
	EXPECT_EQ(1, le(w->buf + 8, 8));		/* body_len */
	EXPECT_EQ(0, le(w->buf + 16, 4));		/* nobjects */
	EXPECT_EQ(0, le(w->buf + 20, 4));		/* nregions */
	EXPECT_EQ(0, le(w->buf + 24, 4));		/* nattach */
	EXPECT_EQ(0, le(w->buf + 28, 4));		/* resv */
	EXPECT_EQ(PYSHM_CLONE_NONE, w->buf[32]);
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
}

TEST_F(clone, scalars_round_trip)
{
	static const int64_t ints[] = { 0, 1, -1, 63, -64, 64, -65, 300, INT32_MAX, INT32_MIN,
					INT64_MAX, INT64_MIN };
	static const uint8_t big[] = { 0, 0, 0, 0, 0, 0, 0, 0, 1 };	/* 2**64 */
	struct pyshm_clone_writer *w = &self->w;
	struct pyshm_clone_info info;
	struct pyshm_clone_reader r;
	struct pyshm_clone_walk wk;
	struct pyshm_clone_item it;
	unsigned int i, n = sizeof(ints) / sizeof(ints[0]);

	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_LIST, n + 8));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, pyshm_clone_put_int(w, ints[i]));
	ASSERT_EQ(0, pyshm_clone_put_bigint(w, 0, big, sizeof(big)));
	ASSERT_EQ(0, pyshm_clone_put_float(w, -2.5));
	ASSERT_EQ(0, pyshm_clone_put_complex(w, 0, 1.0, -1.0));
	ASSERT_EQ(0, pyshm_clone_put_str(w, 0, "h\xc3\xa9llo", 6));
	ASSERT_EQ(0, pyshm_clone_put_bytes(w, PYSHM_CLONE_F_MEMO, "\0\1\2", 3));
	ASSERT_EQ(0, pyshm_clone_put_bool(w, 1));
	ASSERT_EQ(0, pyshm_clone_put_none(w));
	ASSERT_EQ(0, pyshm_clone_put_ref(w, 0));
	ASSERT_EQ(0, finish(w));
	EXPECT_EQ(1, le(w->buf + 16, 4));		/* one memo slot */
	ASSERT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));

	ASSERT_EQ(0, open_msg(w, &info, &r, &wk));
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_LIST, it.type);
	EXPECT_EQ(n + 8, it.v.count);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
		EXPECT_EQ(PYSHM_CLONE_INT, it.type);
		EXPECT_EQ(ints[i], it.v.i);
	}
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_BIGINT, it.type);
	ASSERT_EQ(sizeof(big), it.v.b.len);
	EXPECT_EQ(0, memcmp(big, it.v.b.data, sizeof(big)));
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(-2.5, it.v.f);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(1.0, it.v.c[0]);
	EXPECT_EQ(-1.0, it.v.c[1]);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_STR, it.type);
	EXPECT_EQ(6, it.v.b.len);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_BYTES, it.type);
	EXPECT_EQ(0, it.slot);
	EXPECT_EQ(1, wk.nobjects);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_TRUE, it.type);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_NONE, it.type);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_REF, it.type);
	EXPECT_EQ(0, it.v.index);
	EXPECT_EQ(r.end, r.p);
}

TEST_F(clone, varints_are_leb128_and_zigzag)
{
	struct pyshm_clone_writer *w = &self->w;
	static const uint8_t want[] = {
		PYSHM_CLONE_INT, 0x00,			/* 0 */
		PYSHM_CLONE_INT, 0x01,			/* -1 */
		PYSHM_CLONE_INT, 0xd8, 0x04,		/* 300 */
		PYSHM_CLONE_INT, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
		PYSHM_CLONE_INT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
	};
	struct pyshm_clone_reader r = { want + 1, want + 2 };
	uint64_t v;

	ASSERT_EQ(0, pyshm_clone_put_int(w, 0));
	ASSERT_EQ(0, pyshm_clone_put_int(w, -1));
	ASSERT_EQ(0, pyshm_clone_put_int(w, 300));
	ASSERT_EQ(0, pyshm_clone_put_int(w, INT64_MAX));
	ASSERT_EQ(0, pyshm_clone_put_int(w, INT64_MIN));
	ASSERT_EQ(32 + sizeof(want), w->len);
	EXPECT_EQ(0, memcmp(BODY(w), want, sizeof(want)));

	ASSERT_EQ(0, pyshm_clone_get_varint(&r, &v));
	EXPECT_EQ(0, v);
	EXPECT_EQ(INT64_MIN, pyshm_clone_unzigzag(UINT64_MAX));
	EXPECT_EQ(UINT64_MAX, pyshm_clone_zigzag(INT64_MIN));
}

TEST(varint_reader_refuses_overflow_and_truncation)
{
	static const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					  0x80, 0x80, 0x00 };
	static const uint8_t overflow[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0x02 };
	static const uint8_t max[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0x01 };
	static const uint8_t cut[] = { 0x80, 0x80 };
	struct pyshm_clone_reader r;
	uint64_t v = 0xcc;

	r = (struct pyshm_clone_reader){ eleven, eleven + sizeof(eleven) };
	EXPECT_EQ(-EBADMSG, pyshm_clone_get_varint(&r, &v));
	r = (struct pyshm_clone_reader){ overflow, overflow + sizeof(overflow) };
	EXPECT_EQ(-EBADMSG, pyshm_clone_get_varint(&r, &v));
	r = (struct pyshm_clone_reader){ cut, cut + sizeof(cut) };
	EXPECT_EQ(-EBADMSG, pyshm_clone_get_varint(&r, &v));
	r = (struct pyshm_clone_reader){ cut, cut };
	EXPECT_EQ(-EBADMSG, pyshm_clone_get_varint(&r, &v));
	EXPECT_EQ(0xcc, v);
	r = (struct pyshm_clone_reader){ max, max + sizeof(max) };
	EXPECT_EQ(0, pyshm_clone_get_varint(&r, &v));
	EXPECT_EQ(UINT64_MAX, v);
}

/* Build a header by hand around @body (nobjects @nobj). */
static size_t raw_msg(uint8_t *out, const void *body, size_t n, uint32_t nobj)
{
	memset(out, 0, 32);
	memcpy(out, "PYCL", 4);
	out[4] = PYSHM_CLONE_VERSION;
	out[5] = 32;
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)((uint64_t)n >> (8 * i));
	for (int i = 0; i < 4; i++)
		out[16 + i] = (uint8_t)(nobj >> (8 * i));
	memcpy(out + 32, body, n);
	return 32 + n;
}

TEST(header_is_checked)
{
	static const uint8_t none = PYSHM_CLONE_NONE;
	struct pyshm_clone_info info;
	uint8_t m[64], bad[64];
	size_t n = raw_msg(m, &none, 1, 0), i;

	ASSERT_EQ(0, pyshm_clone_parse(m, n, &info));
	EXPECT_EQ(32, info.body_off);
	EXPECT_EQ(1, info.body_len);
	EXPECT_EQ(33, info.regions_off);
	EXPECT_EQ(33, info.attach_off);
	for (i = 0; i < n; i++)		/* every prefix */
		EXPECT_NE(0, pyshm_clone_parse(m, i, &info));
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(m, n + 1, &info));	/* trailing byte */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(NULL, n, &info));

	memcpy(bad, m, n);
	bad[0] = 'X';
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[4] = 2;
	EXPECT_EQ(-EPROTO, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[5] = 33;
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[7] = 0x80;					/* flags */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[31] = 1;					/* resv */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[15] = 0x80;					/* body_len 2**63 + 1 */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[8] = 0;					/* empty body */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[16] = 2;					/* more slots than bytes */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[23] = 0x10;					/* 2**28 regions */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
	memcpy(bad, m, n);
	bad[24] = 1;					/* an attachment */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(bad, n, &info));
}

TEST_F(clone, tables_follow_the_body)
{
	struct pyshm_clone_writer *w = &self->w;
	struct pyshm_region_ref ref = { .kind = PYSHM_XFER_LOCAL, .flags = 2, .pid = 77,
					.id = 0x1122334455667788ull, .cookie = 9,
					.max_size = 4096 }, got;
	struct pyshm_clone_info info;
	size_t pos = 0, off, len;
	unsigned int role = 99;
	const uint8_t *e;

	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_LIST, 2));
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_SAB | PYSHM_CLONE_F_MEMO, 0));
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_PORT, 0));
	/* Tables only after the body. */
	EXPECT_EQ(-EINVAL, pyshm_clone_put_region(w, PYSHM_CLONE_ROLE_SAB, &ref));
	ASSERT_EQ(0, pyshm_clone_end_body(w));
	EXPECT_EQ(-EINVAL, pyshm_clone_end_body(w));
	EXPECT_EQ(-EINVAL, pyshm_clone_put_region(w, 7, &ref));
	ASSERT_EQ(0, pyshm_clone_put_region(w, PYSHM_CLONE_ROLE_SAB, &ref));
	EXPECT_EQ(-EINVAL, pyshm_clone_end_attachment(w));
	ASSERT_EQ(0, pyshm_clone_begin_attachment(w));
	EXPECT_EQ(-EINVAL, pyshm_clone_begin_attachment(w));
	ASSERT_EQ(0, pyshm_clone_put_raw(w, "port!", 5));
	EXPECT_EQ(-EINVAL, finish(w));
	ASSERT_EQ(0, pyshm_clone_end_attachment(w));
	/* Regions come before attachments. */
	EXPECT_EQ(-EINVAL, pyshm_clone_put_region(w, PYSHM_CLONE_ROLE_SAB, &ref));
	ASSERT_EQ(0, finish(w));

	ASSERT_EQ(32 + 6 + 40 + 4 + 5, w->len);
	EXPECT_EQ(6, le(w->buf + 8, 8));
	EXPECT_EQ(1, le(w->buf + 16, 4));
	EXPECT_EQ(1, le(w->buf + 20, 4));
	EXPECT_EQ(1, le(w->buf + 24, 4));
	e = w->buf + 38;				/* the region entry */
	EXPECT_EQ(PYSHM_CLONE_ROLE_SAB, e[0]);
	EXPECT_EQ(0, le(e + 1, 7));
	EXPECT_EQ(PYSHM_XFER_LOCAL, e[8]);
	EXPECT_EQ(2, e[9]);
	EXPECT_EQ(77, le(e + 12, 4));
	EXPECT_EQ(0x1122334455667788ull, le(e + 16, 8));
	EXPECT_EQ(9, le(e + 24, 8));
	EXPECT_EQ(4096, le(e + 32, 8));
	EXPECT_EQ(5, le(e + 40, 4));			/* the attachment */
	EXPECT_EQ(0, memcmp(e + 44, "port!", 5));

	ASSERT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	ASSERT_EQ(0, pyshm_clone_parse(w->buf, w->len, &info));
	ASSERT_EQ(0, pyshm_clone_get_region(w->buf, &info, 0, &role, &got));
	EXPECT_EQ(PYSHM_CLONE_ROLE_SAB, role);
	EXPECT_EQ(0, memcmp(&ref, &got, sizeof(ref)));
	EXPECT_EQ(-ERANGE, pyshm_clone_get_region(w->buf, &info, 1, &role, &got));
	/* A relay names the region anew; the role stays. */
	ref.cookie = 0xabcdef;
	ref.kind = PYSHM_XFER_SOCKET;
	EXPECT_EQ(-ERANGE, pyshm_clone_set_region(w->buf, &info, 1, &ref));
	EXPECT_EQ(-EINVAL, pyshm_clone_set_region(w->buf, &info, 0, NULL));
	ASSERT_EQ(0, pyshm_clone_set_region(w->buf, &info, 0, &ref));
	ASSERT_EQ(0, pyshm_clone_get_region(w->buf, &info, 0, &role, &got));
	EXPECT_EQ(PYSHM_CLONE_ROLE_SAB, role);
	EXPECT_EQ(0, memcmp(&ref, &got, sizeof(ref)));
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	ASSERT_EQ(1, pyshm_clone_next_attachment(w->buf, &info, &pos, &off, &len));
	EXPECT_EQ(5, len);
	EXPECT_EQ(0, memcmp(w->buf + off, "port!", 5));
	EXPECT_EQ(0, pyshm_clone_next_attachment(w->buf, &info, &pos, &off, &len));

	/* A role the format does not know, or reserved bytes set. */
	w->buf[38] = PYSHM_CLONE_ROLE_MAX + 1;
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(w->buf, w->len, &info));
	w->buf[38] = 0;
	w->buf[40] = 1;
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(w->buf, w->len, &info));
	w->buf[40] = 0;
	w->buf[78] = 6;					/* attachment longer than it is */
	EXPECT_EQ(-EBADMSG, pyshm_clone_parse(w->buf, w->len, &info));
}

/* Blobs by reference: gathered, the message is the one put_blob() writes. */
TEST_F(clone, blobs_by_reference_gather_into_the_same_message)
{
	struct pyshm_clone_writer *w = &self->w, copy;
	struct pyshm_region_ref ref = { .kind = PYSHM_XFER_LOCAL, .id = 5 };
	static uint8_t big1[100000], big2[3];
	struct iovec iov[5];
	uint8_t *gathered;
	size_t at = 0;
	int n, i;

	for (i = 0; i < (int)sizeof(big1); i++)
		big1[i] = (uint8_t)(i * 7);
	memcpy(big2, "xyz", 3);
	ASSERT_EQ(0, pyshm_clone_writer_init(&copy, NULL, NULL, 0));
	for (i = 0; i < 2; i++) {
		struct pyshm_clone_writer *x = i ? &copy : w;
		int (*blob)(struct pyshm_clone_writer *, uint8_t, const void *, size_t) =
			i ? pyshm_clone_put_blob : pyshm_clone_put_blob_ext;

		ASSERT_EQ(0, pyshm_clone_put_head(x, PYSHM_CLONE_LIST, 3));
		ASSERT_EQ(0, blob(x, PYSHM_CLONE_BYTES, big1, sizeof(big1)));
		ASSERT_EQ(0, pyshm_clone_put_int(x, -5));
		ASSERT_EQ(0, blob(x, PYSHM_CLONE_BYTEARRAY, big2, sizeof(big2)));
		ASSERT_EQ(0, pyshm_clone_end_body(x));
		if (i == 0)	/* only the body may refer */
			EXPECT_EQ(-EINVAL, pyshm_clone_put_blob_ext(x, PYSHM_CLONE_BYTES, big2, 3));
		ASSERT_EQ(0, pyshm_clone_put_region(x, PYSHM_CLONE_ROLE_SAB, &ref));
		ASSERT_EQ(0, finish(x));
	}
	EXPECT_EQ(2, w->next);
	EXPECT_EQ(sizeof(big1) + 3, w->extlen);
	EXPECT_EQ(copy.len, w->len + w->extlen);
	n = pyshm_clone_writer_iov(w, iov);
	ASSERT_EQ(5, n);
	gathered = malloc(copy.len);
	ASSERT_NE(NULL, gathered);
	for (i = 0; i < n; i++) {
		memcpy(gathered + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	ASSERT_EQ(copy.len, at);
	EXPECT_EQ(0, memcmp(gathered, copy.buf, copy.len));
	EXPECT_EQ(0, pyshm_clone_verify(gathered, at, NULL));
	free(gathered);
	pyshm_clone_writer_release(&copy);
	EXPECT_EQ(-EINVAL, pyshm_clone_put_blob_ext(w, PYSHM_CLONE_BYTES, NULL, 1));
}

TEST(region_travels_through_a_message)
{
	struct leak_snap before = leak_snap();
	struct pyshm_clone_writer w;
	struct pyshm_region_ref ref;
	struct pyshm_clone_info info;
	struct pyshm_region *r, *got;
	struct pyshm_xfer *x;
	unsigned int role;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	strcpy(pyshm_region_data(r), "shared");
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	ASSERT_EQ(0, pyshm_clone_writer_init(&w, NULL, NULL, 0));
	ASSERT_EQ(0, pyshm_clone_put_head(&w, PYSHM_CLONE_SAB, 0));
	ASSERT_EQ(0, pyshm_clone_end_body(&w));
	/* The reference is made only once the body is complete. */
	ASSERT_EQ(0, pyshm_xfer_send(x, r, &ref));
	ASSERT_EQ(0, pyshm_clone_put_region(&w, PYSHM_CLONE_ROLE_SAB, &ref));
	ASSERT_EQ(0, finish(&w));
	pyshm_region_put(r);

	ASSERT_EQ(0, pyshm_clone_verify(w.buf, w.len, NULL));
	ASSERT_EQ(0, pyshm_clone_parse(w.buf, w.len, &info));
	ASSERT_EQ(0, pyshm_clone_get_region(w.buf, &info, 0, &role, &ref));
	ASSERT_EQ(0, pyshm_xfer_recv(x, &ref, &got));
	EXPECT_STREQ("shared", pyshm_region_data(got));
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &ref, &got));	/* once */
	pyshm_region_put(got);
	pyshm_clone_writer_release(&w);
	pyshm_xfer_free(x);
	ASSERT_NO_LEAK(before);
}

TEST_F(clone, references_only_point_back)
{
	struct pyshm_clone_writer *w = &self->w;

	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_LIST | PYSHM_CLONE_F_MEMO, 2));
	ASSERT_EQ(0, pyshm_clone_put_ref(w, 0));	/* the list itself: fine */
	ASSERT_EQ(0, pyshm_clone_put_ref(w, 1));	/* no slot 1 yet */
	ASSERT_EQ(0, finish(w));
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
	w->buf[w->len - 1] = 0;
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	w->buf[16] = 2;					/* header says 2 slots */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
}

TEST_F(clone, tuple_alias_names_an_earlier_slot)
{
	struct pyshm_clone_writer *w = &self->w;
	size_t tag;

	/* t = ([t],): the outer tuple turns out to be the inner one. */
	tag = w->len;
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_TUPLE | PYSHM_CLONE_F_MEMO, 1));
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_LIST | PYSHM_CLONE_F_MEMO, 1));
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_TUPLE | PYSHM_CLONE_F_MEMO, 1));
	ASSERT_EQ(0, pyshm_clone_put_ref(w, 0));	/* the list */
	ASSERT_EQ(0, pyshm_clone_patch_alias(w, tag, 1));
	EXPECT_EQ(2, w->nobjects);
	EXPECT_EQ(PYSHM_CLONE_TUPLE | PYSHM_CLONE_F_ALIAS, w->buf[tag]);
	EXPECT_EQ(-EINVAL, pyshm_clone_patch_alias(w, tag, 1));	/* no longer MEMO */
	EXPECT_EQ(-EINVAL, pyshm_clone_patch_alias(w, tag + 2, 1));	/* a list can't */
	ASSERT_EQ(0, finish(w));
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));

	w->buf[w->len - 1] = 2;				/* alias of a slot not yet assigned */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
	w->buf[w->len - 1] = 1;
	w->buf[tag] = PYSHM_CLONE_LIST | PYSHM_CLONE_F_ALIAS;	/* lists never alias */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
	w->buf[tag] = PYSHM_CLONE_TUPLE | PYSHM_CLONE_F_ALIAS | PYSHM_CLONE_F_MEMO;
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
}

TEST(memo_and_alias_flags_by_type)
{
	static const uint8_t ok_memo[][3] = {
		{ PYSHM_CLONE_INT | PYSHM_CLONE_F_MEMO, 0x02, 0 },
		{ PYSHM_CLONE_STR | PYSHM_CLONE_F_MEMO, 0x00, 0 },
		{ PYSHM_CLONE_LIST | PYSHM_CLONE_F_MEMO, 0x00, 0 },
		{ PYSHM_CLONE_TUPLE | PYSHM_CLONE_F_MEMO, 0x00, 0 },
	};
	static const uint8_t bad[][3] = {
		{ PYSHM_CLONE_NONE | PYSHM_CLONE_F_MEMO, 0, 0 },
		{ PYSHM_CLONE_TRUE | PYSHM_CLONE_F_MEMO, 0, 0 },
		{ PYSHM_CLONE_LIST | PYSHM_CLONE_F_ALIAS, 0x00, 0x00 },
		{ PYSHM_CLONE_INT | PYSHM_CLONE_F_ALIAS, 0x02, 0x00 },
		{ PYSHM_CLONE_END, 0, 0 },
		{ 0x00, 0, 0 },
		{ PYSHM_CLONE_TYPE_MAX + 1, 0, 0 },
	};
	uint8_t m[64];
	unsigned int i;

	for (i = 0; i < sizeof(ok_memo) / sizeof(ok_memo[0]); i++)
		EXPECT_EQ(0, pyshm_clone_verify(m, raw_msg(m, ok_memo[i], 2, 1), NULL));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = raw_msg(m, bad[i], bad[i][0] & PYSHM_CLONE_F_ALIAS ? 3 : 1,
				   bad[i][0] & PYSHM_CLONE_F_MEMO ? 1 : 0);

		EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, n, NULL));
	}
}

TEST(lying_counts_are_refused_without_allocation)
{
	/* LIST of 2**62 items in 10 bytes; DICT of 2**40 pairs; a 1 TB str. */
	static const uint8_t list[] = { PYSHM_CLONE_LIST, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					0x80, 0x80, 0x40, PYSHM_CLONE_NONE };
	static const uint8_t dict[] = { PYSHM_CLONE_DICT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
					PYSHM_CLONE_NONE, PYSHM_CLONE_NONE };
	static const uint8_t str[] = { PYSHM_CLONE_STR, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
				       'a' };
	static const uint8_t two[] = { PYSHM_CLONE_DICT, 0x01, PYSHM_CLONE_NONE };
	uint8_t m[64];

	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, raw_msg(m, list, sizeof(list), 0), NULL));
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, raw_msg(m, dict, sizeof(dict), 0), NULL));
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, raw_msg(m, str, sizeof(str), 0), NULL));
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, raw_msg(m, two, sizeof(two), 0), NULL));
}

TEST(nesting_is_bounded)
{
	size_t depth = PYSHM_CLONE_MAX_DEPTH, n = 2 * (depth + 1) + 1, i, off = 0;
	uint8_t *body = malloc(n), *m = malloc(n + 32);

	ASSERT_NE(NULL, body);
	ASSERT_NE(NULL, m);
	for (i = 0; i < depth - 1; i++) {
		body[2 * i] = PYSHM_CLONE_LIST;
		body[2 * i + 1] = 1;
	}
	body[2 * (depth - 1)] = PYSHM_CLONE_NONE;
	EXPECT_EQ(0, pyshm_clone_verify(m, raw_msg(m, body, 2 * (depth - 1) + 1, 0), &off));
	for (i = 0; i < depth + 1; i++) {
		body[2 * i] = PYSHM_CLONE_LIST;
		body[2 * i + 1] = 1;
	}
	body[2 * (depth + 1)] = PYSHM_CLONE_NONE;
	EXPECT_EQ(-ELOOP, pyshm_clone_verify(m, raw_msg(m, body, n, 0), &off));
	EXPECT_LT(32, off);
	free(body);
	free(m);
}

TEST(utf8_checks)
{
	static const struct {
		const char *s;
		int strict, surrogates;
	} cases[] = {
		{ "plain", 0, 0 },
		{ "h\xc3\xa9", 0, 0 },
		{ "\xe2\x82\xac", 0, 0 },
		{ "\xf0\x9f\x98\x80", 0, 0 },
		{ "\xf4\x8f\xbf\xbf", 0, 0 },			/* U+10FFFF */
		{ "\xed\xa0\x80", -EILSEQ, 0 },			/* U+D800 */
		{ "\xed\xbf\xbf", -EILSEQ, 0 },			/* U+DFFF */
		{ "\xc0\x80", -EILSEQ, -EILSEQ },		/* overlong NUL */
		{ "\xe0\x80\xaf", -EILSEQ, -EILSEQ },		/* overlong '/' */
		{ "\xf0\x80\x80\xaf", -EILSEQ, -EILSEQ },
		{ "\xf4\x90\x80\x80", -EILSEQ, -EILSEQ },	/* > U+10FFFF */
		{ "\xc3", -EILSEQ, -EILSEQ },			/* truncated */
		{ "\xe2\x82", -EILSEQ, -EILSEQ },
		{ "\x80", -EILSEQ, -EILSEQ },			/* lone continuation */
		{ "\xff", -EILSEQ, -EILSEQ },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;

		EXPECT_EQ(cases[i].strict, pyshm_clone_utf8_check(p, strlen(cases[i].s), 0));
		EXPECT_EQ(cases[i].surrogates, pyshm_clone_utf8_check(p, strlen(cases[i].s), 1));
	}
}

TEST_F(clone, strings_must_be_utf8)
{
	struct pyshm_clone_writer *w = &self->w;

	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_LIST, 2));
	ASSERT_EQ(0, pyshm_clone_put_str(w, 0, "\xed\xa0\x80", 3));
	ASSERT_EQ(0, pyshm_clone_put_blob(w, PYSHM_CLONE_STR_SURROGATE, "\xed\xa0\x80", 3));
	ASSERT_EQ(0, finish(w));
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
	w->buf[34] = PYSHM_CLONE_STR_SURROGATE;
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
}

TEST_F(clone, dates_are_range_checked)
{
	struct pyshm_clone_writer *w = &self->w;
	static const uint8_t date[] = { PYSHM_CLONE_DATE, 0xe8, 0x07, 2, 29 };	/* 2024-02-29 */
	uint8_t m[64];

	ASSERT_EQ(0, pyshm_clone_put_raw(w, date, sizeof(date)));
	ASSERT_EQ(0, finish(w));
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	memcpy(m, w->buf, w->len);
	m[33] = 0xe7;					/* 2023 has no Feb 29 */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, w->len, NULL));
	memcpy(m, w->buf, w->len);
	m[35] = 13;					/* month 13 */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, w->len, NULL));
	memcpy(m, w->buf, w->len);
	m[33] = 0;
	m[34] = 0;					/* year 0 */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, w->len, NULL));
}

TEST_F(clone, memoryview_shape_must_match_the_bytes)
{
	struct pyshm_clone_writer *w = &self->w;
	/* format "i", 2x3, itemsize 4, 24 bytes */
	uint8_t mv[64] = { PYSHM_CLONE_MEMORYVIEW, 0, 1, 'i', 2, 2, 3, 4, 24 };
	struct pyshm_clone_info info;
	struct pyshm_clone_reader r;
	struct pyshm_clone_walk wk;
	struct pyshm_clone_item it;
	uint64_t shape[2];

	ASSERT_EQ(0, pyshm_clone_put_raw(w, mv, 9 + 24));
	ASSERT_EQ(0, finish(w));
	ASSERT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	ASSERT_EQ(0, open_msg(w, &info, &r, &wk));
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(2, it.v.mv.ndim);
	EXPECT_EQ(4, it.v.mv.itemsize);
	EXPECT_EQ(24, it.v.mv.len);
	ASSERT_EQ(0, pyshm_clone_mv_shape(&it, shape));
	EXPECT_EQ(2, shape[0]);
	EXPECT_EQ(3, shape[1]);
	w->buf[32 + 6] = 4;				/* 2x4x4 != 24 */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
}

/* NDARRAY: flags, shape 2x3, item size 4, no padding, 24 bytes, then the
 * dtype child; the bytes must be exactly the shape's. */
TEST(ndarray_data_must_match_shape_and_item_size)
{
	uint8_t body[64] = { PYSHM_CLONE_NDARRAY, 0, 2, 2, 3, 4, 0, 24 };
	uint8_t m[128], *at = body + 8 + 24;
	struct pyshm_clone_info info;
	struct pyshm_clone_reader r;
	struct pyshm_clone_walk wk;
	struct pyshm_clone_item it;
	uint64_t shape[2];
	size_t n;

	memcpy(at, "\x08\x03<i4", 5);
	n = raw_msg(m, body, 8 + 24 + 5, 0);
	ASSERT_EQ(0, pyshm_clone_verify(m, n, NULL));
	ASSERT_EQ(0, pyshm_clone_parse(m, n, &info));
	pyshm_clone_reader_init(&r, &wk, m, &info);
	ASSERT_EQ(0, pyshm_clone_read(&r, &wk, &it));
	EXPECT_EQ(PYSHM_CLONE_NDARRAY, it.type);
	EXPECT_EQ(2, it.v.nd.ndim);
	EXPECT_EQ(6, it.v.nd.count);
	EXPECT_EQ(4, it.v.nd.itemsize);
	EXPECT_EQ(24, it.v.nd.len);
	EXPECT_EQ(m + 32 + 8, it.v.nd.data);
	ASSERT_EQ(0, pyshm_clone_nd_shape(&it, shape, NULL));
	EXPECT_EQ(2, shape[0]);
	EXPECT_EQ(3, shape[1]);

	m[32 + 4] = 4;					/* 2x4x4 != 24 */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, n, NULL));
	m[32 + 4] = 3;
	m[32 + 1] = PYSHM_CLONE_ND_READONLY;		/* a view's flag */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, n, NULL));
	m[32 + 1] = 0;
	m[32 + 6] = PYSHM_CLONE_ND_MAX_PAD + 1;		/* padding bounded */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, n, NULL));
	m[32 + 6] = 0;
	m[32 + 2] = PYSHM_CLONE_MAX_NDIM + 1;
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, n, NULL));
	m[32 + 2] = 2;
	n = raw_msg(m, body, 8 + 24, 0);			/* no dtype */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, n, NULL));
}

/* Shapes whose product overflows, and object arrays with more elements
 * than bytes left, are refused before anything is allocated for them. */
TEST(ndarray_counts_are_bounded)
{
	/* 2**40 x 2**40 items of 8 bytes: varints 0x80..0x80 0x40 */
	static const uint8_t huge[] = {
		PYSHM_CLONE_NDARRAY, 0, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
		0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 8, 0, 0, PYSHM_CLONE_NONE,
	};
	static const uint8_t objects[] = {
		PYSHM_CLONE_NDARRAY_OBJECT, 0, 1, 3, PYSHM_CLONE_NONE, PYSHM_CLONE_NONE,
	};
	static const uint8_t three[] = {
		PYSHM_CLONE_NDARRAY_OBJECT, 0, 1, 3, PYSHM_CLONE_NONE, PYSHM_CLONE_NONE,
		PYSHM_CLONE_NONE,
	};
	uint8_t m[128];

	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, raw_msg(m, huge, sizeof(huge), 0), NULL));
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(m, raw_msg(m, objects, sizeof(objects), 0),
					       NULL));
	EXPECT_EQ(0, pyshm_clone_verify(m, raw_msg(m, three, sizeof(three), 0), NULL));
}

TEST_F(clone, reduce_items_end_with_end)
{
	struct pyshm_clone_writer *w = &self->w;
	static const uint8_t body[] = {
		PYSHM_CLONE_REDUCE | PYSHM_CLONE_F_MEMO, PYSHM_CLONE_RED_LISTITEMS |
			PYSHM_CLONE_RED_DICTITEMS | PYSHM_CLONE_RED_STATE,
		PYSHM_CLONE_GLOBAL | PYSHM_CLONE_F_MEMO, 1, 'm', 1, 'f',
		PYSHM_CLONE_TUPLE, 0,
		PYSHM_CLONE_INT, 2, PYSHM_CLONE_REF, 1, PYSHM_CLONE_END,
		PYSHM_CLONE_INT, 2, PYSHM_CLONE_NONE, PYSHM_CLONE_END,
		PYSHM_CLONE_DICT, 0,
	};

	ASSERT_EQ(0, pyshm_clone_put_raw(w, body, sizeof(body)));
	w->nobjects = 2;
	ASSERT_EQ(0, finish(w));
	EXPECT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	w->buf[32 + 13] = PYSHM_CLONE_NONE;		/* no END: runs off the end */
	EXPECT_EQ(-EBADMSG, pyshm_clone_verify(w->buf, w->len, NULL));
}

TEST_F(clone, every_corruption_is_survived)
{
	struct pyshm_clone_writer *w = &self->w;
	static const uint8_t big[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	size_t i, off;
	uint8_t *copy;
	int b, ok = 0, bad = 0;

	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_DICT | PYSHM_CLONE_F_MEMO, 3));
	ASSERT_EQ(0, pyshm_clone_put_str(w, PYSHM_CLONE_F_MEMO, "key", 3));
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_TUPLE, 2));
	ASSERT_EQ(0, pyshm_clone_put_bigint(w, 0, big, sizeof(big)));
	ASSERT_EQ(0, pyshm_clone_put_ref(w, 0));
	ASSERT_EQ(0, pyshm_clone_put_str(w, 0, "k2", 2));
	ASSERT_EQ(0, pyshm_clone_put_float(w, 1.5));
	ASSERT_EQ(0, pyshm_clone_put_ref(w, 1));
	ASSERT_EQ(0, pyshm_clone_put_head(w, PYSHM_CLONE_SET, 1));
	ASSERT_EQ(0, pyshm_clone_put_int(w, -7));
	ASSERT_EQ(0, finish(w));
	ASSERT_EQ(0, pyshm_clone_verify(w->buf, w->len, NULL));
	copy = malloc(w->len);
	ASSERT_NE(NULL, copy);
	for (i = 0; i < w->len; i++) {
		for (b = 0; b < 256; b++) {
			memcpy(copy, w->buf, w->len);
			copy[i] = (uint8_t)b;
			if (pyshm_clone_verify(copy, w->len, &off) == 0) {
				ok++;
			} else {
				bad++;
				EXPECT_GE(w->len, off);
			}
		}
	}
	EXPECT_LT(0, bad);
	EXPECT_LT(w->len, ok);		/* at least the originals */
	free(copy);
}

TEST(type_names)
{
	EXPECT_STREQ("list", pyshm_clone_type_name(PYSHM_CLONE_LIST));
	EXPECT_STREQ("SharedArrayBuffer", pyshm_clone_type_name(PYSHM_CLONE_SAB));
	EXPECT_EQ(NULL, pyshm_clone_type_name(0));
	EXPECT_EQ(NULL, pyshm_clone_type_name(200));
}

TEST_HARNESS_MAIN
