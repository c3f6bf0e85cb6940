/* store_base.h — what every part of the store API shares: the store
 * handle, its time and id types, opening and closing it, transactions,
 * and the three records (user, organization, project) that the other
 * families embed or refer to.  Every family's header includes it, and
 * <keyward/store.h> includes them all. */
#ifndef KEYWARD_STORE_BASE_H
#define KEYWARD_STORE_BASE_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/key.h"

typedef int64_t kw_time;  /* microseconds since the Unix epoch; 0 = null */

#define KW_ID_LEN 36          /* uuid text / opaque key ids */
#define KW_EMAIL_MAX 254
#define KW_NAME_MAX 400       /* bytes: 200 UTF-8 chars worst case fits */

typedef struct kw_store kw_store;

/* A fresh random uuid (v4 text form): ids of organizations, keys, entries. */
int kw_uuid_v4(char out[KW_ID_LEN + 1]);

typedef struct kw_user {
    int64_t id;
    char uuid[KW_ID_LEN + 1];
    char email[KW_EMAIL_MAX + 1];
    char first_name[KW_NAME_MAX + 1];
    int is_active;
    kw_time created_at;
} kw_user;

typedef struct kw_org {
    char id[KW_ID_LEN + 1];
    char name[KW_NAME_MAX + 1];
    kw_time created_at;
} kw_org;

typedef struct kw_project {
    int64_t id;
    char uuid[KW_ID_LEN + 1];
    char org_id[KW_ID_LEN + 1];
    char name[KW_NAME_MAX + 1];
    /* The public phc_ token: public by design (embedded in apps, returned by
     * GET /api/projects/:id/), so it is stored as is, like PostHog does. */
    char api_token[KW_KEY_MAX_LEN + 1];
    kw_time created_at;
} kw_project;

typedef int (*kw_user_cb)(void *ctx, const kw_user *user);
typedef int (*kw_org_cb)(void *ctx, const kw_org *org, int level);
typedef int (*kw_project_cb)(void *ctx, const kw_project *project);

/* url: a file path or "sqlite:PATH" (SQLite), "postgresql://…" (PostgreSQL).
 * Applies pending migrations before returning. */
int kw_store_open(const char *url, kw_store **out);
void kw_store_close(kw_store *store);
const char *kw_store_backend(const kw_store *store);
/* The calling thread's last database failure as "CODE: message" ("" when
 * none yet), for logs: read it on the thread that saw the error, right
 * after.  Only the server's primary message, which names what failed, not
 * the bound values; log it through a redacting logger all the same. */
const char *kw_store_last_error(void);
/* Current schema version (after migrations). */
int kw_store_schema_version(kw_store *store, int *version);

/* Groups writes on the calling thread's connection into one transaction. */
int kw_store_begin(kw_store *store);
int kw_store_commit(kw_store *store);
void kw_store_rollback(kw_store *store);
/* 1 when the calling thread's session is inside a transaction.  Every
 * service write ends its transaction (kw_txn_end); the HTTP layer checks
 * this after each request, because a transaction left open would hold
 * SQLite's write lock (every other writer then waits out busy_timeout)
 * and serve this thread's later reads from an old snapshot. */
int kw_store_in_transaction(kw_store *store);

#endif
