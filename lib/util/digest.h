/* digest.h — SHA-256 and SHA-1 for the hot paths (internal).
 *
 * Key verification hashes every presented key (SHA-256) and flag
 * evaluation hashes every (flag, caller) pair for rollouts and variants
 * (SHA-1, PostHog's bucketing), many times per request.  OpenSSL 3's
 * one-shot calls (SHA256(), EVP_Digest()) fetch the algorithm from the
 * global method store (a read lock, shared reference counts) and allocate
 * a context on every call; here the algorithms are fetched once and each
 * thread keeps one context, freed when the thread exits (SHA-1 skips EVP:
 * see digest.c). */
#ifndef KW_UTIL_DIGEST_H
#define KW_UTIL_DIGEST_H

#include <stddef.h>

enum kw_digest_alg { KW_DIGEST_SHA256, KW_DIGEST_SHA1, KW_DIGEST_ALGS };

/* Writes the digest (32 or 20 bytes) to out; KW_OK, KW_ERR_NOMEM or
 * KW_ERR_CRYPTO. */
int kw_digest(enum kw_digest_alg alg, const void *data, size_t len, unsigned char *out);

#endif
