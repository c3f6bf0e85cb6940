/* store_activity.h — the store's activity log: who created, changed,
 * rolled or deleted what, as the admin pages list it (lib/store/
 * activity.c).  Part of the store API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_ACTIVITY_H
#define KEYWARD_STORE_ACTIVITY_H

#include "keyward/store_base.h"

typedef struct kw_activity {
    char id[KW_ID_LEN + 1];
    int64_t project_id;     /* 0 = organization-level */
    char org_id[KW_ID_LEN + 1];
    int64_t user_id;        /* 0 = system */
    char activity[32];      /* created, updated, deleted, rolled, revoked, leaked */
    char scope[32];         /* PersonalAPIKey, FeatureFlag, … */
    char item_id[KW_ID_LEN + 1];
    char *detail;           /* JSON object text, heap, owned */
    char ip_address[64];
    kw_time created_at;
} kw_activity;

typedef struct kw_activity_query {
    int64_t project_id;
    const char *const *scopes;  /* NULL-terminated, or NULL for all */
    int64_t user_id;            /* 0 = any */
    const char *item_id;        /* NULL = any */
    kw_time before;             /* 0 = none: entries strictly older (cursor) */
    const char *before_id;      /* tie-break for equal created_at */
    int ascending;
    int64_t limit;
    int64_t offset;
} kw_activity_query;

typedef int (*kw_activity_cb)(void *ctx, const kw_activity *entry);

/* Activity log. */
void kw_activity_clear(kw_activity *entry);
int kw_store_activity_insert(kw_store *store, kw_activity *entry);  /* fills id if empty */
int kw_store_activity_list(kw_store *store, const kw_activity_query *query,
                           kw_activity_cb cb, void *ctx);
int kw_store_activity_count(kw_store *store, const kw_activity_query *query, int64_t *count);

#endif
