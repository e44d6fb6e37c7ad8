/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * The structured-clone wire format (Documentation/wire-format.rst has every
 * byte): what a message posted between workers looks like, and the
 * primitives to write and read it from C.
 *
 * A message is a fixed 32-byte header, a body (one value, recursively), a
 * region table (the SharedArrayBuffers and shared payloads it carries, as
 * struct pyshm_region_ref) and an attachment table (transferred
 * MessagePorts, opaque bytes). The header gives the sizes of all three, so
 * a receiver finds the tables without decoding the body, and a sender
 * writes them only after the body encoded: a failed clone leaves nothing in
 * flight.
 *
 * A value is a tag byte and a payload. The low six bits of the tag are the
 * type (enum pyshm_clone_type); PYSHM_CLONE_F_MEMO says the value takes the
 * next slot of the message's memo, PYSHM_CLONE_F_ALIAS that the value turned
 * out to be one that already has a slot (a cycle through a tuple or a
 * reduce call: its children are read for their side effects, then a varint
 * names the slot). PYSHM_CLONE_REF refers back to a slot: shared and cyclic
 * objects are written once.
 *
 * Writing: pyshm_clone_writer_init() writes the header; the inline
 * pyshm_clone_put_*() helpers append values; pyshm_clone_end_body(),
 * pyshm_clone_put_region() and pyshm_clone_begin/end_attachment() add the
 * tables; pyshm_clone_writer_finish() patches the header. The buffer then
 * belongs to the caller (w->buf, w->len). A large blob may be written by
 * reference (pyshm_clone_put_blob_ext()): its bytes are not copied into the
 * buffer, and the message is the gather list pyshm_clone_writer_iov() makes,
 * to be copied once, where it goes.
 *
 * Reading: pyshm_clone_parse() checks the header and locates the tables;
 * pyshm_clone_read() returns the next value's head, pyshm_clone_finish()
 * closes a value whose memo slot comes after its children, and
 * pyshm_clone_skip() skips (and checks) a whole value. pyshm_clone_verify()
 * checks a whole message without building anything. Every read is bounds
 * checked; malformed input gives -EBADMSG, nesting deeper than
 * PYSHM_CLONE_MAX_DEPTH gives -ELOOP.
 *
 * Like the rest of libpyshm: return >= 0 or -errno; nothing here prints,
 * aborts or sets errno.
 */
#ifndef PYSHM_CLONE_H
#define PYSHM_CLONE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <pyshm/xfer.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PYSHM_CLONE_MAGIC	0x4c435950u	/* "PYCL" */
#define PYSHM_CLONE_VERSION	1
#define PYSHM_CLONE_HDR_SIZE	32
/* A region table entry: role, reserved, then the 32-byte reference. */
#define PYSHM_CLONE_ENTRY_SIZE	40
/* Deepest nesting a reader accepts (and a writer should produce). */
#define PYSHM_CLONE_MAX_DEPTH	1000
/* Longest memoryview format string and most dimensions. */
#define PYSHM_CLONE_MAX_FORMAT	64
#define PYSHM_CLONE_MAX_NDIM	64

/* Tag bits. */
#define PYSHM_CLONE_TYPE_MASK	0x3f
#define PYSHM_CLONE_F_ALIAS	0x40
#define PYSHM_CLONE_F_MEMO	0x80

enum pyshm_clone_type {
	PYSHM_CLONE_NONE	= 0x01,
	PYSHM_CLONE_FALSE	= 0x02,
	PYSHM_CLONE_TRUE	= 0x03,
	PYSHM_CLONE_INT		= 0x04,	/* zigzag varint */
	PYSHM_CLONE_BIGINT	= 0x05,	/* varint n, n bytes two's complement */
	PYSHM_CLONE_FLOAT	= 0x06,	/* binary64 */
	PYSHM_CLONE_COMPLEX	= 0x07,	/* binary64 real, binary64 imag */
	PYSHM_CLONE_STR		= 0x08,	/* varint n, n bytes UTF-8 */
	PYSHM_CLONE_STR_SURROGATE = 0x09, /* same, lone surrogates allowed */
	PYSHM_CLONE_BYTES	= 0x0a,
	PYSHM_CLONE_BYTEARRAY	= 0x0b,
	PYSHM_CLONE_LIST	= 0x0c,	/* varint n, n values */
	PYSHM_CLONE_TUPLE	= 0x0d,
	PYSHM_CLONE_DICT	= 0x0e,	/* varint n, n key/value pairs */
	PYSHM_CLONE_SET		= 0x0f,
	PYSHM_CLONE_FROZENSET	= 0x10,
	PYSHM_CLONE_REF		= 0x11,	/* varint memo slot */
	PYSHM_CLONE_DATE	= 0x12,
	PYSHM_CLONE_TIME	= 0x13,
	PYSHM_CLONE_DATETIME	= 0x14,
	PYSHM_CLONE_TIMEDELTA	= 0x15,
	PYSHM_CLONE_TIMEZONE	= 0x16,
	PYSHM_CLONE_DECIMAL	= 0x17,
	PYSHM_CLONE_FRACTION	= 0x18,
	PYSHM_CLONE_MEMORYVIEW	= 0x19,
	PYSHM_CLONE_ARRAY	= 0x1a,
	PYSHM_CLONE_EXCEPTION	= 0x1b,
	PYSHM_CLONE_GLOBAL	= 0x1c,
	PYSHM_CLONE_REDUCE	= 0x1d,
	PYSHM_CLONE_SAB		= 0x1e,
	PYSHM_CLONE_TYPED_ARRAY	= 0x1f,
	PYSHM_CLONE_PORT	= 0x20,
	PYSHM_CLONE_SHARED	= 0x21,
	PYSHM_CLONE_END		= 0x22,
	PYSHM_CLONE_ARRAYBUFFER	= 0x23,	/* u8 form, then blob or varint region */
	PYSHM_CLONE_NDARRAY	= 0x24,	/* a numpy array's bytes; dtype child */
	PYSHM_CLONE_NDARRAY_OBJECT = 0x25, /* an object array: its elements */
	PYSHM_CLONE_NDARRAY_VIEW = 0x26, /* an array over a SAB: dtype, SAB */
	PYSHM_CLONE_TYPE_MAX	= PYSHM_CLONE_NDARRAY_VIEW,
};

/* DATETIME and TIME flags */
#define PYSHM_CLONE_DT_FOLD	0x01
#define PYSHM_CLONE_DT_TZ	0x02	/* a tzinfo value follows */
/* TIMEZONE flags */
#define PYSHM_CLONE_TZ_NAME	0x01	/* a name follows the offset */
/* MEMORYVIEW flags */
#define PYSHM_CLONE_MV_READONLY	0x01
/* NDARRAY, NDARRAY_OBJECT, NDARRAY_VIEW flags */
#define PYSHM_CLONE_ND_FORTRAN	0x01	/* NDARRAY(_OBJECT): Fortran order */
#define PYSHM_CLONE_ND_READONLY	0x02	/* NDARRAY_VIEW: a read-only view */
/* Most padding an NDARRAY puts before its data (to align it). */
#define PYSHM_CLONE_ND_MAX_PAD	63
/* EXCEPTION flags: which optional parts follow, in this order */
#define PYSHM_CLONE_EXC_STATE	0x01
#define PYSHM_CLONE_EXC_CAUSE	0x02
#define PYSHM_CLONE_EXC_CONTEXT	0x04
#define PYSHM_CLONE_EXC_TBTEXT	0x08
#define PYSHM_CLONE_EXC_SUPPRESS 0x10
#define PYSHM_CLONE_EXC_ALL	0x1f
/* REDUCE flags */
#define PYSHM_CLONE_RED_NEWOBJ	0x01	/* no callable: cls.__new__(cls, *args[1:]) */
#define PYSHM_CLONE_RED_LISTITEMS 0x02
#define PYSHM_CLONE_RED_DICTITEMS 0x04
#define PYSHM_CLONE_RED_STATE	0x08
#define PYSHM_CLONE_RED_SETTER	0x10
#define PYSHM_CLONE_RED_ALL	0x1f

/* Region table roles */
enum pyshm_clone_role {
	PYSHM_CLONE_ROLE_SAB = 0,	/* a SharedArrayBuffer's region */
	PYSHM_CLONE_ROLE_PAYLOAD = 1,	/* a shared payload (capi.h) */
	PYSHM_CLONE_ROLE_ARRAYBUFFER = 2, /* a transferred ArrayBuffer's memory */
	PYSHM_CLONE_ROLE_MAX = PYSHM_CLONE_ROLE_ARRAYBUFFER,
};

/* ARRAYBUFFER forms: its bytes follow (a copy), or its memory moved (a
 * region table entry of role ARRAYBUFFER). */
#define PYSHM_CLONE_AB_COPY	0
#define PYSHM_CLONE_AB_MOVED	1

/* TYPED_ARRAY element types (4 and 8 keep their first meaning, the element
 * size of Int32Array and Int64Array). */
enum pyshm_clone_ta_type {
	PYSHM_CLONE_TA_INT8		= 1,
	PYSHM_CLONE_TA_UINT8		= 2,
	PYSHM_CLONE_TA_UINT8_CLAMPED	= 3,
	PYSHM_CLONE_TA_INT32		= 4,
	PYSHM_CLONE_TA_INT16		= 5,
	PYSHM_CLONE_TA_UINT16		= 6,
	PYSHM_CLONE_TA_UINT32		= 7,
	PYSHM_CLONE_TA_INT64		= 8,
	PYSHM_CLONE_TA_UINT64		= 9,
	PYSHM_CLONE_TA_FLOAT32		= 10,
	PYSHM_CLONE_TA_FLOAT64		= 11,
	PYSHM_CLONE_TA_MAX		= PYSHM_CLONE_TA_FLOAT64,
};

/* ---------------------------------------------------------------- writer */

/* A blob written by reference: @n bytes at @p belong at @pos of the buffer. */
struct pyshm_clone_ext {
	size_t pos;
	const void *p;
	size_t n;
};

struct pyshm_clone_writer {
	uint8_t *buf;
	size_t len;
	size_t cap;
	void *(*realloc_fn)(void *ptr, size_t size);
	void (*free_fn)(void *ptr);
	uint32_t nobjects;	/* tags written with PYSHM_CLONE_F_MEMO */
	uint32_t nregions;
	uint32_t nattach;
	uint32_t phase;		/* internal: body, tables, done */
	size_t attach_pos;	/* internal: the open attachment */
	struct pyshm_clone_ext *ext;	/* blobs by reference, in order */
	uint32_t next, capext;
	size_t extlen;		/* their bytes: the message is len + extlen */
};

/**
 * pyshm_clone_writer_init() - start a message
 * @w: the writer
 * @realloc_fn: how the buffer grows (NULL: realloc())
 * @free_fn: how it is freed (NULL: free())
 * @hint: bytes to allocate up front (0: a small default)
 *
 * Writes the header placeholder; the body follows.
 *
 * Return: 0 or -ENOMEM.
 */
int pyshm_clone_writer_init(struct pyshm_clone_writer *w,
			    void *(*realloc_fn)(void *, size_t),
			    void (*free_fn)(void *), size_t hint);

/**
 * pyshm_clone_writer_release() - free the buffer (NULL buffer is fine)
 */
void pyshm_clone_writer_release(struct pyshm_clone_writer *w);

/**
 * pyshm_clone_writer_grow() - make room for @need more bytes (slow path of
 *	pyshm_clone_reserve())
 *
 * Return: 0 or -ENOMEM (the buffer is unchanged).
 */
int pyshm_clone_writer_grow(struct pyshm_clone_writer *w, size_t need);

/**
 * pyshm_clone_end_body() - close the body; the tables follow
 *
 * Return: 0; -EINVAL when called twice.
 */
int pyshm_clone_end_body(struct pyshm_clone_writer *w);

/**
 * pyshm_clone_put_region() - append a region table entry
 * @role: enum pyshm_clone_role
 * @ref: from pyshm_xfer_send()
 *
 * Entries are numbered in order from 0; PYSHM_CLONE_SAB and
 * PYSHM_CLONE_SHARED values refer to them by number.
 *
 * Return: 0; -EINVAL outside the table phase or for a bad role; -ENOMEM.
 */
int pyshm_clone_put_region(struct pyshm_clone_writer *w, unsigned int role,
			   const struct pyshm_region_ref *ref);

/**
 * pyshm_clone_begin_attachment() - open an attachment; its bytes are then
 *	appended to w->buf (with pyshm_clone_put_raw() or directly)
 *
 * Return: 0; -EINVAL when one is already open; -ENOMEM.
 */
int pyshm_clone_begin_attachment(struct pyshm_clone_writer *w);

/**
 * pyshm_clone_end_attachment() - close the open attachment
 *
 * Return: 0; -EINVAL when none is open; -E2BIG above 4 GiB.
 */
int pyshm_clone_end_attachment(struct pyshm_clone_writer *w);

/**
 * pyshm_clone_writer_finish() - patch the header; w->buf[0..w->len) is
 *	the message
 *
 * Return: 0; -EINVAL when an attachment is open.
 */
int pyshm_clone_writer_finish(struct pyshm_clone_writer *w);

/**
 * pyshm_clone_patch_alias() - turn the value whose tag is at @tag_pos into
 *	an alias of memo slot @slot
 *
 * For a writer that found, after writing a tuple's (or a reduce call's)
 * children, that a cycle through them gave the object a slot already: the
 * tag loses PYSHM_CLONE_F_MEMO, gains PYSHM_CLONE_F_ALIAS, and the slot
 * number is appended.
 *
 * Return: 0; -EINVAL for a tag that cannot alias; -ENOMEM.
 */
int pyshm_clone_patch_alias(struct pyshm_clone_writer *w, size_t tag_pos,
			    uint32_t slot);

static inline int pyshm_clone_reserve(struct pyshm_clone_writer *w, size_t n)
{
	if (__builtin_expect(w->cap - w->len >= n, 1))
		return 0;
	return pyshm_clone_writer_grow(w, n);
}

/* Unchecked appends: the caller reserved the room. */
static inline void pyshm_clone_raw_u8(struct pyshm_clone_writer *w, uint8_t v)
{
	w->buf[w->len++] = v;
}

static inline void pyshm_clone_raw_varint(struct pyshm_clone_writer *w, uint64_t v)
{
	uint8_t *p = w->buf + w->len;

	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	w->len = (size_t)(p - w->buf);
}

static inline void pyshm_clone_raw_le(struct pyshm_clone_writer *w, uint64_t v,
				      unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		w->buf[w->len++] = (uint8_t)(v >> (8 * i));
}

static inline void pyshm_clone_raw_tag(struct pyshm_clone_writer *w, uint8_t tag)
{
	w->buf[w->len++] = tag;
	if (tag & PYSHM_CLONE_F_MEMO)
		w->nobjects++;
}

static inline uint64_t pyshm_clone_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t pyshm_clone_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Checked appends: 0 or -ENOMEM. */
static inline int pyshm_clone_put_tag(struct pyshm_clone_writer *w, uint8_t tag)
{
	if (pyshm_clone_reserve(w, 1) < 0)
		return -ENOMEM;
	pyshm_clone_raw_tag(w, tag);
	return 0;
}

static inline int pyshm_clone_put_varint(struct pyshm_clone_writer *w, uint64_t v)
{
	if (pyshm_clone_reserve(w, 10) < 0)
		return -ENOMEM;
	pyshm_clone_raw_varint(w, v);
	return 0;
}

static inline int pyshm_clone_put_raw(struct pyshm_clone_writer *w,
				      const void *p, size_t n)
{
	if (pyshm_clone_reserve(w, n) < 0)
		return -ENOMEM;
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/* A tag and a varint: containers (count), REF, SAB, PORT (index). */
static inline int pyshm_clone_put_head(struct pyshm_clone_writer *w, uint8_t tag,
				       uint64_t v)
{
	if (pyshm_clone_reserve(w, 11) < 0)
		return -ENOMEM;
	pyshm_clone_raw_tag(w, tag);
	pyshm_clone_raw_varint(w, v);
	return 0;
}

static inline int pyshm_clone_put_none(struct pyshm_clone_writer *w)
{
	return pyshm_clone_put_tag(w, PYSHM_CLONE_NONE);
}

static inline int pyshm_clone_put_bool(struct pyshm_clone_writer *w, int v)
{
	return pyshm_clone_put_tag(w, v ? PYSHM_CLONE_TRUE : PYSHM_CLONE_FALSE);
}

static inline int pyshm_clone_put_int(struct pyshm_clone_writer *w, int64_t v)
{
	return pyshm_clone_put_head(w, PYSHM_CLONE_INT, pyshm_clone_zigzag(v));
}

static inline int pyshm_clone_put_f64(struct pyshm_clone_writer *w, double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	if (pyshm_clone_reserve(w, 8) < 0)
		return -ENOMEM;
	pyshm_clone_raw_le(w, u, 8);
	return 0;
}

static inline int pyshm_clone_put_float(struct pyshm_clone_writer *w, double d)
{
	if (pyshm_clone_put_tag(w, PYSHM_CLONE_FLOAT) < 0)
		return -ENOMEM;
	return pyshm_clone_put_f64(w, d);
}

/* A tag, a varint length and the bytes: BIGINT, STR, BYTES, BYTEARRAY,
 * DECIMAL. @flags may hold PYSHM_CLONE_F_MEMO. */
static inline int pyshm_clone_put_blob(struct pyshm_clone_writer *w, uint8_t tag,
				       const void *p, size_t n)
{
	if (pyshm_clone_reserve(w, 11 + n) < 0)
		return -ENOMEM;
	pyshm_clone_raw_tag(w, tag);
	pyshm_clone_raw_varint(w, n);
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/**
 * pyshm_clone_put_bigint() - an integer of any size, as @n bytes of
 *	little-endian two's complement
 *
 * Values that fit in 64 bits should use pyshm_clone_put_int(); readers
 * accept both.
 */
/**
 * pyshm_clone_put_blob_ext() - pyshm_clone_put_blob() by reference
 * @p: the bytes; they must stay as they are until the message is copied
 *	out of pyshm_clone_writer_iov()'s list
 *
 * Only the tag and the length go into the buffer. For large blobs: a
 * message is then copied once, by whoever gathers it.
 *
 * Return: 0; -EINVAL outside the body; -ENOMEM.
 */
int pyshm_clone_put_blob_ext(struct pyshm_clone_writer *w, uint8_t tag, const void *p,
			     size_t n);

/**
 * pyshm_clone_put_raw_ext() - pyshm_clone_put_raw() by reference
 *
 * The @n bytes at @p follow what the buffer holds so far (the end of a
 * value whose head the caller wrote, such as the data blob of a
 * MEMORYVIEW after its length), under the same rules as
 * pyshm_clone_put_blob_ext().
 *
 * Return: 0; -EINVAL outside the body; -ENOMEM.
 */
int pyshm_clone_put_raw_ext(struct pyshm_clone_writer *w, const void *p, size_t n);

/**
 * pyshm_clone_writer_iov() - the finished message as a gather list
 * @iov: room for 2 * w->next + 1 entries
 *
 * Return: the number of entries (their lengths add up to w->len + w->extlen).
 */
int pyshm_clone_writer_iov(const struct pyshm_clone_writer *w, struct iovec *iov);

static inline int pyshm_clone_put_bigint(struct pyshm_clone_writer *w, uint8_t flags,
					 const void *le_bytes, size_t n)
{
	return pyshm_clone_put_blob(w, PYSHM_CLONE_BIGINT | flags, le_bytes, n);
}

static inline int pyshm_clone_put_complex(struct pyshm_clone_writer *w, uint8_t flags,
					  double re, double im)
{
	if (pyshm_clone_put_tag(w, PYSHM_CLONE_COMPLEX | flags) < 0 ||
	    pyshm_clone_put_f64(w, re) < 0)
		return -ENOMEM;
	return pyshm_clone_put_f64(w, im);
}

/* @utf8 must be valid UTF-8 (surrogates need PYSHM_CLONE_STR_SURROGATE). */
static inline int pyshm_clone_put_str(struct pyshm_clone_writer *w, uint8_t flags,
				      const char *utf8, size_t n)
{
	return pyshm_clone_put_blob(w, PYSHM_CLONE_STR | flags, utf8, n);
}

static inline int pyshm_clone_put_bytes(struct pyshm_clone_writer *w, uint8_t flags,
					const void *p, size_t n)
{
	return pyshm_clone_put_blob(w, PYSHM_CLONE_BYTES | flags, p, n);
}

static inline int pyshm_clone_put_ref(struct pyshm_clone_writer *w, uint32_t slot)
{
	return pyshm_clone_put_head(w, PYSHM_CLONE_REF, slot);
}

/* ---------------------------------------------------------------- reader */

/* A parsed header: where everything is (offsets from the message start). */
struct pyshm_clone_info {
	uint32_t version;
	uint32_t nobjects;	/* memo slots the body assigns */
	uint32_t nregions;
	uint32_t nattach;
	size_t body_off;
	size_t body_len;
	size_t regions_off;
	size_t attach_off;	/* the first attachment's length word */
	size_t len;		/* the whole message */
};

/**
 * pyshm_clone_parse() - check a message's header and tables
 *
 * Checks the magic, version, reserved fields, that the body and the tables
 * lie inside @len and end exactly at @len, and that every region entry has
 * a known role and zero reserved bytes. Does not look at the body.
 *
 * Return: 0; -EBADMSG for a malformed message; -EPROTO for another
 * version.
 */
int pyshm_clone_parse(const void *buf, size_t len, struct pyshm_clone_info *info);

/**
 * pyshm_clone_get_region() - region table entry @i of a parsed message
 * @role: its enum pyshm_clone_role
 * @ref: the reference, for pyshm_xfer_recv() or pyshm_xfer_drop()
 *
 * Return: 0; -ERANGE when @i is past the table.
 */
int pyshm_clone_get_region(const void *buf, const struct pyshm_clone_info *info,
			   uint32_t i, unsigned int *role,
			   struct pyshm_region_ref *ref);

/**
 * pyshm_clone_set_region() - replace the reference of region table entry @i
 *	(its role stays)
 *
 * For a relay that passes a message on: the regions it received are sent
 * again, through the next hop's transfer, and the message names them anew.
 *
 * Return: 0; -ERANGE when @i is past the table; -EINVAL.
 */
int pyshm_clone_set_region(void *buf, const struct pyshm_clone_info *info, uint32_t i,
			   const struct pyshm_region_ref *ref);

/**
 * pyshm_clone_next_attachment() - walk the attachment table
 * @pos: 0 to start; advanced past each attachment
 * @off: where the attachment's bytes start
 * @len: how many
 *
 * Return: 1 and the next attachment; 0 at the end; -EBADMSG.
 */
int pyshm_clone_next_attachment(const void *buf, const struct pyshm_clone_info *info,
				size_t *pos, size_t *off, size_t *len);

struct pyshm_clone_reader {
	const uint8_t *p;
	const uint8_t *end;
};

/* What a reader has seen: memo slots so far, the table sizes, the depth. */
struct pyshm_clone_walk {
	uint32_t nobjects;	/* slots assigned so far */
	uint32_t max_objects;	/* the header's count */
	uint32_t nregions;
	uint32_t nattach;
	unsigned int depth;
	unsigned int flags;	/* PYSHM_CLONE_WALK_* */
};

/* The caller checks strings itself (pyshm_clone_read() skips UTF-8). */
#define PYSHM_CLONE_WALK_NO_UTF8	0x01

/**
 * pyshm_clone_reader_init() - a reader and walk state over a parsed
 *	message's body
 */
void pyshm_clone_reader_init(struct pyshm_clone_reader *r,
			     struct pyshm_clone_walk *wk, const void *buf,
			     const struct pyshm_clone_info *info);

static inline int pyshm_clone_get_u8(struct pyshm_clone_reader *r, uint8_t *v)
{
	if (__builtin_expect(r->p == r->end, 0))
		return -EBADMSG;
	*v = *r->p++;
	return 0;
}

/* LEB128, at most 10 bytes and 64 bits. */
static inline int pyshm_clone_get_varint(struct pyshm_clone_reader *r, uint64_t *v)
{
	uint64_t x = 0;
	unsigned int shift = 0;
	uint8_t b;

	if (__builtin_expect(r->p != r->end && *r->p < 0x80, 1)) {
		*v = *r->p++;
		return 0;
	}
	do {
		if (r->p == r->end || shift > 63)
			return -EBADMSG;
		b = *r->p++;
		if (shift == 63 && b > 1)
			return -EBADMSG;
		x |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	*v = x;
	return 0;
}

static inline int pyshm_clone_get_le(struct pyshm_clone_reader *r, unsigned int n,
				     uint64_t *v)
{
	uint64_t x = 0;
	unsigned int i;

	if ((size_t)(r->end - r->p) < n)
		return -EBADMSG;
	for (i = 0; i < n; i++)
		x |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	*v = x;
	return 0;
}

static inline int pyshm_clone_get_f64(struct pyshm_clone_reader *r, double *d)
{
	uint64_t u;

	if (pyshm_clone_get_le(r, 8, &u) < 0)
		return -EBADMSG;
	memcpy(d, &u, sizeof(*d));
	return 0;
}

/* @n bytes in place; never past the end, whatever @n claims. */
static inline int pyshm_clone_get_raw(struct pyshm_clone_reader *r, uint64_t n,
				      const uint8_t **out)
{
	if (n > (uint64_t)(r->end - r->p))
		return -EBADMSG;
	*out = r->p;
	r->p += n;
	return 0;
}

/* The head of one value, as pyshm_clone_read() returns it. */
struct pyshm_clone_item {
	uint8_t type;		/* enum pyshm_clone_type */
	uint8_t tag;		/* the whole tag byte, with its flags */
	uint8_t flags;		/* the type's own flags byte, where it has one */
	uint32_t slot;		/* memo slot (F_MEMO) once assigned; alias target */
	union {
		int64_t i;				/* INT */
		double f;				/* FLOAT */
		double c[2];				/* COMPLEX */
		struct {
			const uint8_t *data;
			size_t len;
		} b;		/* BIGINT, STR*, BYTES, BYTEARRAY, DECIMAL */
		uint64_t count;	/* LIST TUPLE SET FROZENSET; DICT: pairs */
		uint64_t index;	/* REF (slot), SAB (region), PORT (attachment) */
		struct {
			uint32_t year, month, day, hour, minute, second, us;
		} dt;		/* DATE TIME DATETIME (flags: DT_*) */
		struct {
			int64_t days;
			uint32_t seconds, us;
			const uint8_t *name;	/* TIMEZONE with TZ_NAME */
			size_t name_len;
		} td;		/* TIMEDELTA TIMEZONE */
		struct {
			const uint8_t *format;
			size_t format_len;
			uint64_t ndim, itemsize;
			const uint8_t *shape;	/* ndim varints, see
						 * pyshm_clone_mv_shape() */
			const uint8_t *data;
			size_t len;
		} mv;		/* MEMORYVIEW (flags: MV_*) */
		struct {
			uint8_t typecode;
			const uint8_t *data;
			size_t len;
		} arr;		/* ARRAY */
		struct {
			const uint8_t *module, *qualname;
			size_t module_len, qualname_len;
		} global;	/* GLOBAL */
		struct {
			uint32_t elsize;	/* from the type */
			uint8_t type;		/* enum pyshm_clone_ta_type */
			uint64_t byte_offset;
			int64_t length;		/* -1: tracks the buffer */
		} ta;		/* TYPED_ARRAY */
		struct {
			uint8_t form;		/* PYSHM_CLONE_AB_* */
			uint64_t index;		/* AB_MOVED: region */
			const uint8_t *data;	/* AB_COPY: the bytes */
			size_t len;
		} ab;		/* ARRAYBUFFER */
		struct {
			uint64_t ndim, itemsize;
			uint64_t count;		/* elements: the shape's product */
			const uint8_t *shape;	/* see pyshm_clone_nd_shape() */
			const uint8_t *data;	/* NDARRAY: count * itemsize */
			size_t len;
			/* NDARRAY_VIEW: the bytes of the buffer the view
			 * touches, [lo, hi) (lo == hi when it is empty) */
			uint64_t byte_offset, lo, hi;
		} nd;		/* NDARRAY* (flags: ND_*) */
	} v;
};

/**
 * pyshm_clone_read() - read the head of the next value
 *
 * Leaves (None, bools, numbers, strings, bytes, dates, decimals, arrays,
 * memoryviews, globals, SABs, ArrayBuffers, ports) are read whole. Containers and the
 * other composite types leave their children to the caller, in the order
 * Documentation/wire-format.rst gives; for types whose memo slot comes after
 * their children (TUPLE, FROZENSET, TIME/DATETIME with a tzinfo, FRACTION,
 * TYPED_ARRAY, SHARED, NDARRAY, NDARRAY_VIEW) and for EXCEPTION and REDUCE
 * (after the callable and arguments) the caller then calls
 * pyshm_clone_finish(). END is returned
 * as a value of type PYSHM_CLONE_END.
 *
 * Checks every length against the input, every REF against the slots
 * assigned so far, every SAB/PORT index against the tables, strings for
 * UTF-8 and dates for their ranges.
 *
 * Return: 0; -EBADMSG.
 */
int pyshm_clone_read(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
		     struct pyshm_clone_item *it);

/**
 * pyshm_clone_finish() - reach the memo point of a composite value
 *
 * Return: 0, and the slot assigned if the tag had PYSHM_CLONE_F_MEMO; 1 if
 * the value is an alias: it->slot is the slot it stands for, and for
 * EXCEPTION and REDUCE nothing more of it follows; -EBADMSG.
 */
int pyshm_clone_finish(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk,
		       struct pyshm_clone_item *it);

/**
 * pyshm_clone_skip() - read and check one whole value, children included
 *
 * Return: 0; -EBADMSG; -ELOOP past PYSHM_CLONE_MAX_DEPTH.
 */
int pyshm_clone_skip(struct pyshm_clone_reader *r, struct pyshm_clone_walk *wk);

/**
 * pyshm_clone_verify() - check a whole message without building anything
 * @err_off: if not NULL, the offset where a malformed message went wrong
 *
 * pyshm_clone_parse(), then the body is one value that ends exactly at the
 * region table and assigns exactly the header's number of memo slots.
 *
 * Return: 0; -EBADMSG; -EPROTO for another version; -ELOOP for nesting
 * past PYSHM_CLONE_MAX_DEPTH.
 */
int pyshm_clone_verify(const void *buf, size_t len, size_t *err_off);

/**
 * pyshm_clone_mv_shape() - the dimensions of a MEMORYVIEW item
 * @shape: room for it->v.mv.ndim values
 *
 * Return: 0 (the item was checked when read).
 */
int pyshm_clone_mv_shape(const struct pyshm_clone_item *it, uint64_t *shape);

/**
 * pyshm_clone_nd_shape() - the dimensions (and a view's strides) of an
 *	NDARRAY* item
 * @shape: room for it->v.nd.ndim values
 * @strides: NDARRAY_VIEW: room for it->v.nd.ndim values, else NULL
 *
 * Return: 0 (the item was checked when read).
 */
int pyshm_clone_nd_shape(const struct pyshm_clone_item *it, uint64_t *shape, int64_t *strides);

/**
 * pyshm_clone_utf8_check() - is [@p, @p + @n) well-formed UTF-8?
 * @surrogates: also accept encoded U+D800..U+DFFF (PYSHM_CLONE_STR_SURROGATE)
 *
 * Return: 0 or -EILSEQ.
 */
int pyshm_clone_utf8_check(const uint8_t *p, size_t n, int surrogates);

/**
 * pyshm_clone_type_name() - "list", "datetime", ... or NULL
 */
const char *pyshm_clone_type_name(unsigned int type);

#ifdef __cplusplus
}
#endif
#endif /* PYSHM_CLONE_H */
