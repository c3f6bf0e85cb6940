/* store_changes.h — how caches learn that the database changed: the
 * generations the database bumps in every writing transaction, the change
 * log naming what changed, and the notifications that wake a waiting
 * instance (lib/store/changes.c, db.c).  Part of the store API:
 * <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_CHANGES_H
#define KEYWARD_STORE_CHANGES_H

#include "keyward/store_base.h"

/* The auth generation: a counter the database bumps, in the writing
 * transaction, whenever a key is rolled, re-scoped or deleted, a user is
 * (de)activated or deleted, or a project token changes.  Verification
 * caches poll it and, when it moved, read what changed from the change
 * log (kw_store_changes). */
int kw_store_auth_generation(kw_store *store, int64_t *generation);

/* The flags generation: bumped by the database, in the writing transaction,
 * on every INSERT, UPDATE or DELETE of a feature flag, whoever writes it.
 * Flag definition caches poll it, as the verifier does the auth one. */
int kw_store_flags_generation(kw_store *store, int64_t *generation);

/* The directory generation: bumped by the database, in the writing
 * transaction (on PostgreSQL at its commit), on every write to users,
 * organizations, memberships or projects and on a personal key's change of
 * scoping or deletion — everything GET /api/users/@me answers.  The @me
 * answer cache compares it (kw_directory). */
int kw_store_directory_generation(kw_store *store, int64_t *generation);

enum { KW_CHANGE_AUTH = 1, KW_CHANGE_FLAGS = 2, KW_CHANGE_ALL = 3 };

/* The change log: every bump of the auth or flags generation writes one
 * row, in the same transaction, naming what changed — so a cache can
 * forget just that instead of everything.  `kind` is "personal" or
 * "secret" (ref: the key id; a rolled-away value is logged as its key),
 * "user" or "project" (ref: the id as text), or "flags" (ref: the project
 * id, on the flags stream).  The generation of a change is the value the
 * generation took when it was logged, so a stream's rows are numbered
 * without gaps in commit order (the bump's row lock serializes writers). */
typedef struct kw_change {
    int64_t generation;
    char kind[16];
    char ref[KW_ID_LEN + 1];
} kw_change;
/* Calls fn for each change of `stream` (KW_CHANGE_AUTH or KW_CHANGE_FLAGS)
 * with after < generation <= upto, oldest first.  Returns how many there
 * were — fewer than upto - after when older rows were pruned — or a
 * negative KW_ERR_*.  A non-zero return from fn stops and is returned. */
int kw_store_changes(kw_store *store, int stream, int64_t after, int64_t upto,
                     int (*fn)(void *ctx, const kw_change *change), void *ctx);
/* Deletes the changes of `stream` up to and including `through`. */
int kw_store_changes_prune(kw_store *store, int stream, int64_t through);

/* Change notifications: waits up to timeout_ms for the database
 * to announce a write by anyone (PostgreSQL LISTEN keyward_auth /
 * keyward_flags on a dedicated connection).  KW_OK with *what = 0 on
 * timeout, else a mask of KW_CHANGE_*; after the notification connection
 * was (re)established *what is KW_CHANGE_ALL, since notifications sent
 * while it was down are lost.  KW_ERR_UNAVAILABLE when the database cannot
 * be reached (returns at once: the caller decides how long to back off);
 * KW_ERR_UNSUPPORTED when the backend has no notifications (SQLite: keep
 * polling the generations).  One waiter at a time. */
int kw_store_wait_change(kw_store *store, int timeout_ms, int *what);

#endif
