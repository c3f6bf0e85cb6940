/* changes.c — the change log of the auth and flags generations: which key,
 * user, project or project's flags each write changed.  Triggers write it
 * (schema migration 9); caches read it to forget only what changed
 * (lib/auth/follow.c) and prune what every reader has long passed. */
#include <stddef.h>

#include "keyward/keyward.h"
#include "store/db.h"

static const struct kw_db_field CHANGE[] = {
    KW_DB_I64(kw_change, generation),
    KW_DB_TEXT(kw_change, kind),
    KW_DB_TEXT(kw_change, ref),
};

int kw_store_changes(kw_store *s, int stream, int64_t after, int64_t upto,
                     int (*fn)(void *ctx, const kw_change *change), void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_CHANGES_SINCE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, stream);
    kw_db_int(st, 2, after);
    kw_db_int(st, 3, upto);
    kw_change change;
    int n = 0;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(CHANGE), &change)) == KW_DB_ROW) {
        n++;
        if ((rc = fn(ctx, &change))) break;
    }
    rc = kw_db_finish(st, rc);
    return rc ? rc : n;
}

int kw_store_changes_prune(kw_store *s, int stream, int64_t through)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_CHANGES_PRUNE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, stream);
    kw_db_int(st, 2, through);
    return kw_db_exec(st, 0);
}
