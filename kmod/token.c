// SPDX-License-Identifier: GPL-2.0
/*
 * Tokens: random 64-bit names for regions, kept by the domain they were
 * exported through. Each token pins its region until it is consumed (one-shot
 * tokens, by their import), revoked, or its domain is closed.
 */
#include <linux/hashtable.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "internal.h"

/*
 * struct pyshm_token - one exported token
 * @node: in domain->tokens, under domain->lock
 * @value: the token; never 0
 * @region: the pinned region (one reference, counted in region->nr_pins)
 * @oneshot: removed by its first successful import
 */
struct pyshm_token {
	struct hlist_node node;
	u64 value;
	struct pyshm_region *region;
	bool oneshot;
};

static struct pyshm_token *token_find(struct pyshm_domain *domain, u64 value)
{
	struct pyshm_token *token;

	lockdep_assert_held(&domain->lock);
	hash_for_each_possible(domain->tokens, token, node, value)
		if (token->value == value)
			return token;
	return NULL;
}

static void token_unlink(struct pyshm_domain *domain, struct pyshm_token *token)
{
	lockdep_assert_held(&domain->lock);
	hash_del(&token->node);
	domain->nr_tokens--;
}

/* Drop the pin; never under domain->lock (the region may be freed). */
static void token_free(struct pyshm_token *token)
{
	atomic_dec(&token->region->nr_pins);
	pyshm_region_put(token->region);
	kfree(token);
	atomic64_dec(&pyshm_stats.tokens);
}

/**
 * pyshm_token_export() - pin @region in @domain under a new token
 * @domain: the domain that will know the token
 * @region: the region to pin
 * @oneshot: whether the first import consumes the token
 * @value: the token, on success
 *
 * Return: 0; -ENOSPC when the domain holds max_domain_tokens; -ENOMEM.
 */
int pyshm_token_export(struct pyshm_domain *domain,
		       struct pyshm_region *region, bool oneshot, u64 *value)
{
	struct pyshm_token *token;
	int ret = 0;

	token = kmalloc(sizeof(*token), GFP_KERNEL_ACCOUNT);
	if (!token)
		return -ENOMEM;

	mutex_lock(&domain->lock);
	if (domain->nr_tokens >= pyshm_limit_domain_tokens()) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	/* Unguessable, never 0, and (almost surely at once) not in use. */
	do {
		token->value = get_random_u64();
	} while (!token->value || token_find(domain, token->value));
	pyshm_region_get(region);
	atomic_inc(&region->nr_pins);
	token->region = region;
	token->oneshot = oneshot;
	hash_add(domain->tokens, &token->node, token->value);
	domain->nr_tokens++;
	*value = token->value;
	token = NULL;
out_unlock:
	mutex_unlock(&domain->lock);
	kfree(token);
	if (!ret) {
		atomic64_inc(&pyshm_stats.tokens);
		atomic64_inc(&pyshm_stats.exports);
	}
	return ret;
}

/**
 * pyshm_token_lookup() - the region a token of @domain names
 * @domain: the domain of the import
 * @value: the token
 * @oneshot: whether the import must pyshm_token_consume() it
 *
 * The token stays in place, so a failed import loses nothing.
 *
 * Return: the region with a new reference, or ERR_PTR(-ENOENT).
 */
struct pyshm_region *pyshm_token_lookup(struct pyshm_domain *domain, u64 value,
					bool *oneshot)
{
	struct pyshm_region *region = ERR_PTR(-ENOENT);
	struct pyshm_token *token;

	mutex_lock(&domain->lock);
	token = token_find(domain, value);
	if (token) {
		region = token->region;
		pyshm_region_get(region);
		*oneshot = token->oneshot;
	}
	mutex_unlock(&domain->lock);
	return region;
}

/**
 * pyshm_token_consume() - remove the one-shot token an import found
 * @domain: the domain of the import
 * @value: the token
 * @region: the region pyshm_token_lookup() returned for it
 *
 * The commit point of an import: of racing importers of one token, exactly
 * one finds it here.
 *
 * Return: 0; -ENOENT when it was consumed or revoked meanwhile.
 */
int pyshm_token_consume(struct pyshm_domain *domain, u64 value,
			struct pyshm_region *region)
{
	struct pyshm_token *token;

	mutex_lock(&domain->lock);
	token = token_find(domain, value);
	if (token && token->region == region && token->oneshot)
		token_unlink(domain, token);
	else
		token = NULL;
	mutex_unlock(&domain->lock);
	if (!token)
		return -ENOENT;
	token_free(token);
	return 0;
}

/**
 * pyshm_token_revoke() - forget a token of @domain and drop its pin
 * @domain: the domain that knows the token
 * @value: the token
 *
 * Return: 0, or -ENOENT for a token @domain does not hold.
 */
int pyshm_token_revoke(struct pyshm_domain *domain, u64 value)
{
	struct pyshm_token *token;

	mutex_lock(&domain->lock);
	token = token_find(domain, value);
	if (token)
		token_unlink(domain, token);
	mutex_unlock(&domain->lock);
	if (!token)
		return -ENOENT;
	token_free(token);
	return 0;
}

/**
 * pyshm_token_flush() - drop every token of a domain that is going away
 * @domain: the domain
 *
 * Called from the domain file's release, when no ioctl can run on it.
 */
void pyshm_token_flush(struct pyshm_domain *domain)
{
	struct pyshm_token *token;
	struct hlist_node *tmp;
	HLIST_HEAD(dead);
	int bkt;

	mutex_lock(&domain->lock);
	hash_for_each_safe(domain->tokens, bkt, tmp, token, node) {
		token_unlink(domain, token);
		hlist_add_head(&token->node, &dead);
	}
	mutex_unlock(&domain->lock);

	hlist_for_each_entry_safe(token, tmp, &dead, node)
		token_free(token);
}
