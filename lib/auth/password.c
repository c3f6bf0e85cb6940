/* password.c — console passwords: argon2id hashing, verification, rules.
 *
 * Parameters are OWASP's recommendation for argon2id (19 MiB, 2 passes,
 * one lane): about 50 ms here, and 19 MiB per concurrent sign-in.  They are
 * written into every encoded hash, so raising them later only affects new
 * hashes; old ones still verify.  The plaintext is never stored or logged;
 * callers wipe their copies. */
#include <argon2.h>
#include <openssl/rand.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/session.h"
#include "store/txn.h"
#include "keyward/validate.h"

#define T_COST 2
#define M_COST_KIB 19456
#define LANES 1
#define SALT_LEN 16
#define HASH_LEN 32

int kw_password_hash(const char *password, char out[KW_PASSWORD_HASH_MAX + 1])
{
    unsigned char salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1) return KW_ERR_CRYPTO;
    size_t need = argon2_encodedlen(T_COST, M_COST_KIB, LANES, SALT_LEN, HASH_LEN, Argon2_id);
    if (need > KW_PASSWORD_HASH_MAX + 1) return KW_ERR_INVALID;
    int rc = argon2id_hash_encoded(T_COST, M_COST_KIB, LANES, password, strlen(password), salt,
                                   sizeof salt, HASH_LEN, out, KW_PASSWORD_HASH_MAX + 1);
    return rc == ARGON2_OK ? KW_OK : (rc == ARGON2_MEMORY_ALLOCATION_ERROR ? KW_ERR_NOMEM
                                                                          : KW_ERR_CRYPTO);
}

int kw_password_verify(const char *encoded, const char *password)
{
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0) return 0;
    return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

int kw_password_check(const char *password, kw_problem *p)
{
    if (strlen(password) > KW_PASSWORD_MAX_BYTES) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", "password",
                       "Ensure this field has no more than %d characters.", KW_PASSWORD_MAX_BYTES);
        return 1;
    }
    if (kw_v_utf8_length(password) < KW_PASSWORD_MIN_CHARS) {
        kw_problem_set(p, KW_P_VALIDATION, "password_too_short", "password",
                       "This password is too short. It must contain at least %d characters.",
                       KW_PASSWORD_MIN_CHARS);
        return 1;
    }
    return 0;
}

int kw_user_set_password(const kw_call *c, int64_t user_id, const char *password, kw_problem *p)
{
    char hash[KW_PASSWORD_HASH_MAX + 1];
    if (kw_password_check(password, p)) return 1;
    int rc = kw_password_hash(password, hash);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_user_password_set(c->store, user_id, hash);
    /* A new password ends every session: whoever knew the old one is out. */
    if (!rc) rc = kw_store_session_delete_user(c->store, user_id);
    if (rc == KW_ERR_NOTFOUND) {
        kw_store_rollback(c->store);
        return kw_problem_from_store(p, rc);
    }
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}
