// SPDX-License-Identifier: MIT
/*
 * What decoding a message may spend on hashing (clone.h): the steps a key
 * costs to hash, the comparisons its colliding hash brings, and the budget
 * they are charged to, linear in the message size. A hostile message can
 * otherwise make a set of 292 bytes hash 2**64 tuple items (a chain of
 * tuples written with back-references), or a set of distinct ints of one
 * hash compare each with all the earlier ones.
 */
#include <pthread.h>
#include <sys/random.h>

#include "clone.h"

/* Keys nested deeper than this are refused: CPython's tuple hash recurses
 * in C without a limit. Decoded keys nest at most PYSHM_CLONE_MAX_DEPTH. */
#define KEY_MAX_DEPTH		(2 * PYSHM_CLONE_MAX_DEPTH)
/* A comparison of colliding keys costs this many steps per key step. */
#define COMPARE_STEPS		3

struct clone_key_count {
	Py_hash_t hash;
	uint64_t n;			/* keys of this hash so far; 0: free */
};

void clone_budget_init(struct clone_budget *b, size_t msg_len)
{
	uint64_t per = (uint64_t)msg_len;

	if (per > (UINT64_MAX - CLONE_BUDGET_BASE) / CLONE_BUDGET_PER_BYTE)
		per = (UINT64_MAX - CLONE_BUDGET_BASE) / CLONE_BUDGET_PER_BYTE;
	b->total = b->left = CLONE_BUDGET_BASE + CLONE_BUDGET_PER_BYTE * per;
}

static int budget_refuse(pymod_state *st, const struct clone_budget *b)
{
	PyErr_Format(st->DataCloneError, "clone message refused: hashing its set members and "
		     "dict keys would take more than %llu steps, the bound for its size "
		     "(shared tuples used as keys, or keys of colliding hashes)",
		     (unsigned long long)b->total);
	return -1;
}

/* Steps to hash the digits of int @v (8 bytes a step). */
static uint64_t long_cost(PyObject *v)
{
	Py_ssize_t n = clone_long_nbytes(v);

	if (n < 0) {
		PyErr_Clear();
		return 1;
	}
	return 1 + (uint64_t)n / 8;
}

static uint64_t attr_long_cost(PyObject *obj, const char *name)
{
	PyObject *v = PyObject_GetAttrString(obj, name);
	uint64_t cost = v && PyLong_Check(v) ? long_cost(v) : 1;

	Py_XDECREF(v);
	PyErr_Clear();
	return cost;
}

/*
 * The steps hash(@obj) costs, or more than @limit once it passes it (the
 * walk stops there, so it costs no more than the budget it checks).
 * Tuples hash all their items each time; ints and Fractions (pure Python,
 * uncached) their digits; a frozenset its members' stored hashes once; str,
 * bytes, Decimal and datetime cache their hash; anything else counts one.
 */
static uint64_t hash_cost(pymod_state *st, PyObject *obj, uint64_t limit, int depth)
{
	PyTypeObject *tp = Py_TYPE(obj);
	uint64_t cost = 1;
	Py_ssize_t i;

	if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyFloat_Type)
		return 1;
	if (PyLong_Check(obj) && tp->tp_hash == PyLong_Type.tp_hash)
		return long_cost(obj);
	if (PyTuple_Check(obj) && tp->tp_hash == PyTuple_Type.tp_hash) {
		if (depth >= KEY_MAX_DEPTH)
			return limit + 1;
		for (i = 0; i < PyTuple_GET_SIZE(obj) && cost <= limit; i++)
			cost += hash_cost(st, PyTuple_GET_ITEM(obj, i), limit - cost, depth + 1);
		return cost;
	}
	if (PyFrozenSet_Check(obj) && tp->tp_hash == PyFrozenSet_Type.tp_hash)
		return ((PySetObject *)obj)->hash == -1 ? 1 + (uint64_t)PySet_GET_SIZE(obj) : 1;
	if ((PyObject *)tp == cc_get(st, CC_FRACTION))
		return attr_long_cost(obj, "_numerator") + attr_long_cost(obj, "_denominator");
	return 1;
}

/*
 * The index of a hash in a container's table: multiply-shift with a
 * multiplier secret to this process, so that the sender, who chooses the
 * hashes of ints, cannot make them collide in this table too.
 */
static uint64_t key_mult;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_mult_init(void)
{
	if (getrandom(&key_mult, sizeof(key_mult), 0) != sizeof(key_mult))
		key_mult = (uint64_t)(uintptr_t)&key_mult * 0x9e3779b97f4a7c15ull;
	key_mult |= 1;
}

static size_t key_index(Py_hash_t h, size_t mask)
{
	return (size_t)(((uint64_t)h * key_mult) >> 32) & mask;
}

static int keys_grow(struct clone_keys *ks)
{
	size_t size = ks->table ? 2 * (ks->mask + 1) : 64, i, j;
	struct clone_key_count *t = PyMem_Calloc(size, sizeof(*t));

	if (!t) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; ks->table && i <= ks->mask; i++) {
		if (!ks->table[i].n)
			continue;
		for (j = key_index(ks->table[i].hash, size - 1); t[j].n; j = (j + 1) & (size - 1))
			;
		t[j] = ks->table[i];
	}
	PyMem_Free(ks->table);
	ks->table = t;
	ks->mask = size - 1;
	return 0;
}

/* Count a key of hash @h in the table: the number of earlier ones. */
static uint64_t table_count(struct clone_keys *ks, Py_hash_t h)
{
	struct clone_key_count *t = ks->table;
	size_t i;

	for (i = key_index(h, ks->mask); t[i].n; i = (i + 1) & ks->mask)
		if (t[i].hash == h)
			return t[i].n++;
	t[i].hash = h;
	t[i].n = 1;
	ks->used++;
	return 0;
}

/* Count a key of hash @h: *@before is the number of earlier keys of @h.
 * The first keys go to a small array, the rest to the table. */
static int keys_count(struct clone_keys *ks, Py_hash_t h, uint64_t *before)
{
	const unsigned int nsmall = sizeof(ks->small) / sizeof(ks->small[0]);
	unsigned int k;

	*before = 0;
	if (!ks->table && ks->nsmall < nsmall) {
		for (k = 0; k < ks->nsmall; k++)
			*before += ks->small[k] == h;
		ks->small[ks->nsmall++] = h;
		return 0;
	}
	if (!ks->table) {
		pthread_once(&key_once, key_mult_init);
		ks->used = 0;
		if (keys_grow(ks) < 0)
			return -1;
		for (k = 0; k < nsmall; k++)
			table_count(ks, ks->small[k]);
	}
	if (2 * (ks->used + 1) > ks->mask + 1 && keys_grow(ks) < 0)
		return -1;
	*before = table_count(ks, h);
	return 0;
}

int clone_budget_key_slow(pymod_state *st, struct clone_budget *b, struct clone_keys *keys,
			  PyObject *key)
{
	uint64_t cost, before;
	Py_hash_t h;

	/* Twice: once here, once by the container. */
	cost = hash_cost(st, key, b->left / 2, 0);
	if (!b->left || cost > b->left / 2)
		return budget_refuse(st, b);
	b->left -= 2 * cost;
	h = PyObject_Hash(key);
	if (h == -1 || keys_count(keys, h, &before) < 0)
		return -1;
	if (before) {
		/* Each earlier key of this hash may be compared with it. */
		if (before > b->left / COMPARE_STEPS / cost)
			return budget_refuse(st, b);
		b->left -= before * cost * COMPARE_STEPS;
	}
	return 0;
}
