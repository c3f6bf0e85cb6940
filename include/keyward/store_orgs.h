/* store_orgs.h — the store's directory: users, organizations and their
 * memberships, and projects with their settings and group types (lib/store/
 * users.c, orgs.c, project_settings.c, group_types.c).  Part of the store
 * API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_ORGS_H
#define KEYWARD_STORE_ORGS_H

#include "keyward/store_base.h"

/* Membership levels, PostHog's values. */
enum { KW_LEVEL_MEMBER = 1, KW_LEVEL_ADMIN = 8, KW_LEVEL_OWNER = 15 };

/* Users, organizations, memberships. */
int kw_store_user_count(kw_store *store, int64_t *count);
int kw_store_user_create(kw_store *store, kw_user *user);       /* fills id, uuid, created_at */
int kw_store_user_get(kw_store *store, int64_t id, kw_user *out);
int kw_store_user_by_email(kw_store *store, const char *email, kw_user *out);
int kw_store_user_set_active(kw_store *store, int64_t id, int active);
int kw_store_org_create(kw_store *store, kw_org *org);          /* fills id, created_at */
int kw_store_org_get(kw_store *store, const char *id, kw_org *out);
int kw_store_membership_set(kw_store *store, int64_t user_id, const char *org_id, int level);
/* KW_ERR_NOTFOUND when the user is not a member. */
int kw_store_membership_level(kw_store *store, int64_t user_id, const char *org_id, int *level);
/* The same, with the directory generation read in the same statement (one
 * snapshot): `*generation` is set whether or not the user is a member. */
int kw_store_membership_level_at(kw_store *store, int64_t user_id, const char *org_id, int *level,
                                 int64_t *generation);
int kw_store_user_orgs(kw_store *store, int64_t user_id, kw_org_cb cb, void *ctx);

/* Managing organizations, projects and members (lib/store/orgs.c).
 * Deleting an organization deletes its projects, memberships and
 * invitations; deleting a project deletes its secret keys, flags, events
 * and endpoints — all by the schema's cascades, whose row triggers log
 * each revoked phs_ key and phc_ token in the change log, so every
 * verifier (on every instance) forgets them.  A deleted project's id is
 * never handed out again.  KW_ERR_NOTFOUND when the row is not there. */
typedef struct kw_member {
    kw_user user;
    int level;
    kw_time joined_at;
} kw_member;
typedef int (*kw_member_cb)(void *ctx, const kw_member *member);

int kw_store_org_rename(kw_store *store, const char *id, const char *name);
int kw_store_org_delete(kw_store *store, const char *id);
/* Inside a transaction: later membership changes of this organization
 * wait until it ends (the last-owner rule is read and kept in one step). */
int kw_store_org_lock(kw_store *store, const char *id);
int kw_store_org_projects(kw_store *store, const char *org_id, kw_project_cb cb, void *ctx);
/* Members by join time. */
int kw_store_org_members(kw_store *store, const char *org_id, int64_t limit, int64_t offset,
                         kw_member_cb cb, void *ctx);
/* Members at min_level or above (0: all). */
int kw_store_org_member_count(kw_store *store, const char *org_id, int min_level, int64_t *count);
int kw_store_member_by_uuid(kw_store *store, const char *org_id, const char *user_uuid,
                            kw_member *out);
int kw_store_membership_update(kw_store *store, int64_t user_id, const char *org_id, int level);
int kw_store_membership_delete(kw_store *store, int64_t user_id, const char *org_id);
int kw_store_project_rename(kw_store *store, int64_t id, const char *name);
int kw_store_project_delete(kw_store *store, int64_t id);

/* Projects. */
int kw_store_project_create(kw_store *store, kw_project *project);  /* fills id, uuid, created_at */
int kw_store_project_get(kw_store *store, int64_t id, kw_project *out);
int kw_store_project_by_token(kw_store *store, const char *api_token, kw_project *out);
/* Projects of every organization the user belongs to, by id. */
int kw_store_user_projects(kw_store *store, int64_t user_id, kw_project_cb cb, void *ctx);
int kw_store_project_set_token(kw_store *store, int64_t id, const char *api_token);

/* Every user / every project, by id (the shell's `keys report` without
 * --email). */
int kw_store_user_list(kw_store *store, kw_user_cb cb, void *ctx);
int kw_store_project_list(kw_store *store, kw_project_cb cb, void *ctx);

/* What a project's browser SDK is told to do (its remote config): columns
 * of the project row, read and written apart from it (only the remote
 * config, the project's JSON and its admin's PATCH use them). */
typedef struct kw_project_settings {
    int autocapture_opt_out;         /* no $autocapture events */
    int capture_performance_opt_in;  /* network timing ($performance_event) */
    int heatmaps_opt_in;             /* $heatmap data */
} kw_project_settings;
int kw_store_project_settings_get(kw_store *store, int64_t project_id, kw_project_settings *out);
/* Writes the members that are >= 0 and keeps the others (< 0);
 * KW_ERR_NOTFOUND when the project does not exist. */
int kw_store_project_settings_set(kw_store *store, int64_t project_id,
                                  const kw_project_settings *settings);

/* A project's group types (PostHog's group analytics): learned from
 * captured events, index 0-4 in order of first sight, at most
 * KW_GROUP_TYPES_MAX per project.  Names are empty when unset (null). */
#define KW_GROUP_TYPES_MAX 5
#define KW_GROUP_TYPE_MAX 400  /* bytes of a group type's name */
typedef struct kw_group_type {
    int64_t project_id;
    char group_type[KW_GROUP_TYPE_MAX + 1];
    int64_t index;
    char name_singular[KW_NAME_MAX + 1];
    char name_plural[KW_NAME_MAX + 1];
    kw_time created_at;
} kw_group_type;
typedef int (*kw_group_type_cb)(void *ctx, const kw_group_type *group_type);
/* The project's group types by index; a non-zero return from cb stops. */
int kw_store_group_types(kw_store *store, int64_t project_id, kw_group_type_cb cb, void *ctx);
/* Adds `group_type` at the next index: KW_OK when added, KW_ERR_EXISTS
 * when the name is there already, KW_ERR_LIMIT when the project has
 * KW_GROUP_TYPES_MAX.  Two writers adding different names at once cannot
 * take one index (the statement computes it, the index is unique; the
 * loser retries). */
int kw_store_group_type_add(kw_store *store, int64_t project_id, const char *group_type,
                            kw_time now);
/* Sets the display names of the type at `index` ("" stores null);
 * KW_ERR_NOTFOUND when there is none. */
int kw_store_group_type_rename(kw_store *store, int64_t project_id, int64_t index,
                               const char *singular, const char *plural);

#endif
