/* store_pg_console.c — the web console's storage in the PostgreSQL backend:
 * password hashes, sessions, invitations, failed sign-ins, server secrets.
 *
 * Same statements and semantics as store_sqlite_console.c.  They run with
 * kw_pg_run_sql (PQexecParams: parsed per call, not prepared) so they need
 * no slot in store_pg.c's statement table; none of them is on the key
 * verification hot path.  Every value is a bound $n text parameter; the
 * casts say the types PostgreSQL cannot infer from an expression. */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define P(base) ((struct pg_store *)(base))

static int write_sql(kw_store *b, const char *sql, const struct pg_params *p, int must_change)
{
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), sql, p, &r);
    if (rc) return rc;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return must_change && changed == 0 ? KW_ERR_NOTFOUND : KW_OK;
}

/* A one-row query: KW_OK with *out holding the row, KW_ERR_NOTFOUND. */
static int one_row(kw_store *b, const char *sql, const struct pg_params *p, PGresult **out)
{
    int rc = kw_pg_run_sql(P(b), sql, p, out);
    if (rc) return rc;
    if (PQntuples(*out) == 1) return KW_OK;
    PQclear(*out);
    *out = NULL;
    return KW_ERR_NOTFOUND;
}

int kw_pg_password_get(kw_store *b, int64_t user_id, char *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = one_row(b, "SELECT password_hash FROM users WHERE id = $1", &p, &r);
    if (rc) return rc;
    kw_pg_col_copy(r, 0, 0, out, KW_PASSWORD_HASH_MAX + 1);
    PQclear(r);
    return KW_OK;
}

int kw_pg_password_set(kw_store *b, int64_t user_id, const char *hash)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text_or_null(&p, hash);
    return write_sql(b, "UPDATE users SET password_hash = $2 WHERE id = $1", &p, 1);
}

int kw_pg_session_insert(kw_store *b, const kw_session *s)
{
    struct pg_params p = {0};
    kw_pg_text(&p, s->token_hash);
    kw_pg_int(&p, s->user_id);
    kw_pg_int(&p, s->created_at);
    kw_pg_int(&p, s->last_seen_at);
    kw_pg_int(&p, s->expires_at);
    return write_sql(b, "INSERT INTO sessions(token_hash, user_id, created_at, last_seen_at, "
                        "expires_at) VALUES ($1, $2, $3, $4, $5)", &p, 0);
}

int kw_pg_session_get(kw_store *b, const char *token_hash, kw_session *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, token_hash);
    PGresult *r;
    int rc = one_row(b, "SELECT s.token_hash, s.user_id, s.created_at, s.last_seen_at, "
                        "s.expires_at, u.is_active FROM sessions s JOIN users u ON u.id = s.user_id "
                        "WHERE s.token_hash = $1", &p, &r);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    kw_pg_col_copy(r, 0, 0, out->token_hash, sizeof out->token_hash);
    out->user_id = kw_pg_col_int(r, 0, 1);
    out->created_at = kw_pg_col_int(r, 0, 2);
    out->last_seen_at = kw_pg_col_int(r, 0, 3);
    out->expires_at = kw_pg_col_int(r, 0, 4);
    out->user_active = kw_pg_col_bool(r, 0, 5);
    PQclear(r);
    return KW_OK;
}

int kw_pg_session_touch(kw_store *b, const char *token_hash, kw_time now, kw_time interval)
{
    struct pg_params p = {0};
    kw_pg_text(&p, token_hash);
    kw_pg_int(&p, now);
    kw_pg_int(&p, interval);
    return write_sql(b, "UPDATE sessions SET last_seen_at = $2::bigint WHERE token_hash = $1 "
                        "AND last_seen_at <= $2::bigint - $3::bigint", &p, 0);
}

int kw_pg_session_delete(kw_store *b, const char *token_hash)
{
    struct pg_params p = {0};
    kw_pg_text(&p, token_hash);
    return write_sql(b, "DELETE FROM sessions WHERE token_hash = $1", &p, 0);
}

int kw_pg_session_delete_user(kw_store *b, int64_t user_id)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    return write_sql(b, "DELETE FROM sessions WHERE user_id = $1", &p, 0);
}

int kw_pg_invite_insert(kw_store *b, const kw_invite *i)
{
    struct pg_params p = {0};
    kw_pg_text(&p, i->id);
    kw_pg_text(&p, i->org_id);
    kw_pg_text(&p, i->token_hash);
    kw_pg_text(&p, i->target_email);
    kw_pg_int(&p, i->level);
    kw_pg_int_or_null(&p, i->created_by);
    kw_pg_int(&p, i->created_at);
    kw_pg_int(&p, i->expires_at);
    return write_sql(b, "INSERT INTO invites(id, org_id, token_hash, target_email, level, "
                        "created_by, created_at, expires_at, accepted_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)", &p, 0);
}

int kw_pg_invite_by_hash(kw_store *b, const char *token_hash, kw_invite *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, token_hash);
    PGresult *r;
    int rc = one_row(b, "SELECT id, org_id, token_hash, target_email, level, created_by, "
                        "created_at, expires_at, accepted_at FROM invites WHERE token_hash = $1",
                     &p, &r);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    kw_pg_col_copy(r, 0, 0, out->id, sizeof out->id);
    kw_pg_col_copy(r, 0, 1, out->org_id, sizeof out->org_id);
    kw_pg_col_copy(r, 0, 2, out->token_hash, sizeof out->token_hash);
    kw_pg_col_copy(r, 0, 3, out->target_email, sizeof out->target_email);
    out->level = (int)kw_pg_col_int(r, 0, 4);
    out->created_by = kw_pg_col_int(r, 0, 5);
    out->created_at = kw_pg_col_int(r, 0, 6);
    out->expires_at = kw_pg_col_int(r, 0, 7);
    out->accepted_at = kw_pg_col_int(r, 0, 8);
    PQclear(r);
    return KW_OK;
}

int kw_pg_invite_accept(kw_store *b, const char *id, kw_time now)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_int(&p, now);
    /* Under READ COMMITTED a concurrent second UPDATE waits for the first,
     * re-checks accepted_at IS NULL on the new row and changes nothing. */
    return write_sql(b, "UPDATE invites SET accepted_at = $2::bigint WHERE id = $1 "
                        "AND accepted_at IS NULL AND expires_at > $2::bigint", &p, 1);
}

int kw_pg_login_failure_add(kw_store *b, const char *key, kw_time now, kw_time keep)
{
    struct pg_params p = {0};
    kw_pg_text(&p, key);
    kw_pg_int(&p, now - keep);
    int rc = write_sql(b, "DELETE FROM login_attempts WHERE key = $1 AND at < $2", &p, 0);
    if (rc) return rc;
    struct pg_params q = {0};
    kw_pg_text(&q, key);
    kw_pg_int(&q, now);
    return write_sql(b, "INSERT INTO login_attempts(key, at) VALUES ($1, $2)", &q, 0);
}

int kw_pg_login_failure_nth(kw_store *b, const char *key, kw_time since, int nth, kw_time *at)
{
    struct pg_params p = {0};
    kw_pg_text(&p, key);
    kw_pg_int(&p, since);
    kw_pg_int(&p, nth > 0 ? nth - 1 : 0);
    PGresult *r;
    *at = 0;
    int rc = one_row(b, "SELECT at FROM login_attempts WHERE key = $1 AND at > $2 "
                        "ORDER BY at DESC LIMIT 1 OFFSET $3", &p, &r);
    if (rc == KW_ERR_NOTFOUND) return KW_OK;
    if (rc) return rc;
    *at = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

int kw_pg_login_failure_clear(kw_store *b, const char *key)
{
    struct pg_params p = {0};
    kw_pg_text(&p, key);
    return write_sql(b, "DELETE FROM login_attempts WHERE key = $1", &p, 0);
}

int kw_pg_meta_secret(kw_store *b, const char *name, const char *candidate, char *out,
                          size_t size)
{
    struct pg_params p = {0};
    kw_pg_text(&p, name);
    kw_pg_text(&p, candidate);
    int rc = write_sql(b, "INSERT INTO kw_meta(name, value, text_value) VALUES ($1, 0, $2) "
                          "ON CONFLICT(name) DO NOTHING", &p, 0);
    if (rc) return rc;
    struct pg_params q = {0};
    kw_pg_text(&q, name);
    PGresult *r;
    rc = one_row(b, "SELECT text_value FROM kw_meta WHERE name = $1", &q, &r);
    if (rc) return rc;
    kw_pg_col_copy(r, 0, 0, out, size);
    PQclear(r);
    return out[0] ? KW_OK : KW_ERR_DB;
}
