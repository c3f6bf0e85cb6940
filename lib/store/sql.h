/* sql.h — the ids of the statement table (internal to lib/store/).
 *
 * Every fixed statement keyward runs is a row of one table (sql.c), written
 * once in SQLite's ?N syntax; the PostgreSQL driver rewrites ?N to $N when
 * it prepares.  A row may carry a PostgreSQL text of its own, only where
 * the SQL really differs.  Each section belongs to one stored object (the
 * file named in its comment). */
#ifndef KW_SQL_H
#define KW_SQL_H

enum kw_sql_id {
    /* the database itself (db.c) */
    KW_SQL_SCHEMA_VERSION,
    KW_SQL_AUTH_GENERATION,
    KW_SQL_FLAGS_GENERATION,
    KW_SQL_DIRECTORY_GENERATION,

    /* API keys of both kinds (keys.c) */
    KW_SQL_PKEY_INSERT, KW_SQL_PKEY_GET, KW_SQL_PKEY_LIST, KW_SQL_PKEY_UPDATE,
    KW_SQL_PKEY_ROLL, KW_SQL_PKEY_DELETE, KW_SQL_PKEY_BY_HASH, KW_SQL_PKEY_TOUCH,
    KW_SQL_PSK_INSERT, KW_SQL_PSK_GET, KW_SQL_PSK_LIST, KW_SQL_PSK_COUNT, KW_SQL_PSK_UPDATE,
    KW_SQL_PSK_ROLL, KW_SQL_PSK_DELETE, KW_SQL_PSK_BY_HASH, KW_SQL_PSK_TOUCH,
    KW_SQL_PKEY_AUTH_BY_HASH, KW_SQL_PKEY_REHASH, KW_SQL_PKEY_LEGACY_COUNT, KW_SQL_IMPORT_PKEY,
    KW_SQL_PKEY_EXPIRY_DUE, KW_SQL_PSK_EXPIRY_DUE, KW_SQL_PKEY_EXPIRY_MARK, KW_SQL_PSK_EXPIRY_MARK,

    /* users, organizations, memberships and projects (users.c) */
    KW_SQL_USER_COUNT, KW_SQL_USER_INSERT, KW_SQL_USER_GET, KW_SQL_USER_BY_EMAIL,
    KW_SQL_USER_SET_ACTIVE, KW_SQL_USER_LIST, KW_SQL_ORG_INSERT, KW_SQL_ORG_GET,
    KW_SQL_MEMBER_SET, KW_SQL_MEMBER_LEVEL, KW_SQL_MEMBER_LEVEL_AT, KW_SQL_USER_ORGS, KW_SQL_PROJECT_INSERT,
    KW_SQL_PROJECT_GET, KW_SQL_PROJECT_BY_TOKEN, KW_SQL_USER_PROJECTS, KW_SQL_PROJECT_SET_TOKEN,
    KW_SQL_PROJECT_LIST, KW_SQL_IMPORT_USER, KW_SQL_IMPORT_ORG, KW_SQL_IMPORT_PROJECT,
    KW_SQL_IMPORT_SEQUENCES,
    /* managing organizations, projects and members (orgs.c) */
    KW_SQL_ORG_RENAME, KW_SQL_ORG_DELETE, KW_SQL_ORG_LOCK, KW_SQL_ORG_PROJECTS,
    KW_SQL_ORG_MEMBERS, KW_SQL_ORG_MEMBER_COUNT, KW_SQL_MEMBER_UPDATE, KW_SQL_MEMBER_DELETE,
    KW_SQL_MEMBER_BY_UUID, KW_SQL_PROJECT_RENAME, KW_SQL_PROJECT_DELETE,

    /* feature flags (flags.c) */
    KW_SQL_FLAG_INSERT, KW_SQL_FLAG_GET, KW_SQL_FLAG_LIST_NEWEST, KW_SQL_FLAG_LIST_BY_KEY,
    KW_SQL_FLAG_UPDATE,

    /* the activity log (activity.c) */
    KW_SQL_ACTIVITY_INSERT,

    /* events and endpoints (events.c) */
    KW_SQL_EV_INSERT, KW_SQL_EV_INSERT_ROWS, KW_SQL_EV_COUNTS, KW_SQL_EV_UNIQUE,
    KW_SQL_EV_BREAKDOWN, KW_SQL_EV_RECENT,
    KW_SQL_EP_INSERT, KW_SQL_EP_GET, KW_SQL_EP_LIST, KW_SQL_EP_COUNT, KW_SQL_EP_UPDATE,
    KW_SQL_EP_DELETE,

    /* console sessions, invites, passwords, sign-in failures (console.c) */
    KW_SQL_PASSWORD_GET, KW_SQL_PASSWORD_SET,
    KW_SQL_SESSION_INSERT, KW_SQL_SESSION_GET, KW_SQL_SESSION_TOUCH, KW_SQL_SESSION_DELETE,
    KW_SQL_SESSION_DELETE_USER,
    KW_SQL_INVITE_INSERT, KW_SQL_INVITE_BY_HASH, KW_SQL_INVITE_ACCEPT,
    KW_SQL_LOGIN_FAILURE_PRUNE, KW_SQL_LOGIN_FAILURE_INSERT, KW_SQL_LOGIN_FAILURE_NTH,
    KW_SQL_LOGIN_FAILURE_CLEAR,
    KW_SQL_META_SECRET_INSERT, KW_SQL_META_SECRET_GET,

    /* rolled values and key lifecycle (lifecycle.c) */
    KW_SQL_ROLLED_DELETE, KW_SQL_ROLLED_INSERT, KW_SQL_ROLLED_GET, KW_SQL_ROLLED_EXPIRY,
    KW_SQL_ROLLED_LIVE,
    KW_SQL_PKEY_SCOPES_USED, KW_SQL_PSK_SCOPES_USED, KW_SQL_PKEY_TOUCH_MANY, KW_SQL_PSK_TOUCH_MANY,

    /* the change log of generations (changes.c) */
    KW_SQL_CHANGES_SINCE, KW_SQL_CHANGES_PRUNE,

    /* a project's browser SDK settings (project_settings.c) */
    KW_SQL_PROJECT_SETTINGS_GET, KW_SQL_PROJECT_SETTINGS_SET,

    /* a project's group types (group_types.c) */
    KW_SQL_GROUP_TYPES, KW_SQL_GROUP_TYPE_ADD, KW_SQL_GROUP_TYPE_HAS, KW_SQL_GROUP_TYPE_RENAME,

    /* an organization's webhooks and their outbox (webhooks.c) */
    KW_SQL_WEBHOOK_INSERT, KW_SQL_WEBHOOK_GET, KW_SQL_WEBHOOK_BY_ID, KW_SQL_WEBHOOK_LIST,
    KW_SQL_WEBHOOK_COUNT, KW_SQL_WEBHOOK_UPDATE, KW_SQL_WEBHOOK_DELETE, KW_SQL_WEBHOOK_TARGETS,
    KW_SQL_OUTBOX_INSERT, KW_SQL_OUTBOX_CLAIM, KW_SQL_OUTBOX_RESULT, KW_SQL_OUTBOX_LIST,
    KW_SQL_OUTBOX_COUNT, KW_SQL_OUTBOX_PRUNE, KW_SQL_OUTBOX_BACKLOG, KW_SQL_WEBHOOK_HOLD,
    KW_SQL_WEBHOOK_RELEASE, KW_SQL_OUTBOX_PENDING_TEST, KW_SQL_OUTBOX_EXPIRE,

    KW_SQL_COUNT
};

/* The text of each statement: sql for both databases, pg where
 * PostgreSQL needs its own (NULL: use sql). */
struct kw_sql_text {
    const char *sql;
    const char *pg;
};
extern const struct kw_sql_text kw_sql[KW_SQL_COUNT];

#endif
