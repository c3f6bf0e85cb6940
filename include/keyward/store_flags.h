/* store_flags.h — the store's feature flag definitions (lib/store/
 * flags.c); their evaluation and caches are lib/flags/'s.  Part of the
 * store API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_FLAGS_H
#define KEYWARD_STORE_FLAGS_H

#include "keyward/store_base.h"

typedef struct kw_flag {
    int64_t id;
    int64_t project_id;
    char key[KW_NAME_MAX + 1];
    char name[KW_NAME_MAX + 1];
    char *filters;  /* JSON object text, heap, owned */
    int active;
    int deleted;
    int ensure_experience_continuity;
    int64_t version;
    int64_t created_by;  /* user id, 0 = none */
    kw_time created_at;
    kw_time updated_at;
    /* Read with the row by get and the newest-first listing (the admin
     * pages), so a page needs no query per flag; `joined` says so. */
    kw_user created_by_user;
    int joined;
} kw_flag;

typedef int (*kw_flag_cb)(void *ctx, const kw_flag *flag);

/* Feature flags.  Insert fails with KW_ERR_EXISTS on a duplicate live key. */
void kw_flag_clear(kw_flag *flag);
int kw_store_flag_insert(kw_store *store, kw_flag *flag);  /* fills id, version, times */
int kw_store_flag_get(kw_store *store, int64_t project_id, int64_t id, kw_flag *out);
enum kw_flag_order { KW_FLAG_NEWEST_FIRST, KW_FLAG_BY_KEY };
int kw_store_flag_list(kw_store *store, int64_t project_id, enum kw_flag_order order,
                       int include_deleted, kw_flag_cb cb, void *ctx);
int kw_store_flag_update(kw_store *store, kw_flag *flag);  /* bumps version, updated_at */

#endif
