/* sql.c — the statement table: every fixed statement keyward runs, once.
 *
 * Written in ?N syntax for both databases.  Three habits keep one text
 * valid on both: numbers compared or computed from a parameter are cast
 * (CAST(?2 AS BIGINT)), because PostgreSQL receives every parameter as
 * text; booleans are written as integers compared with 0, which both read
 * as true/false; and a row's own pg text is used only where the SQL really
 * differs (PostgreSQL's locked limit-insert functions, a row's physical
 * id).  Ids are in sql.h, grouped by the file that runs them. */
#include "store/sql.h"

/* Most rows give only the text both databases run; clang's -Wextra would
 * flag each for leaving out the optional PostgreSQL text (gcc does not). */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#endif

#define PKEY_COLS "id, user_id, label, secure_value, mask_value, created_at, last_used_at, " \
                  "last_rolled_at, scopes, scoped_teams, scoped_organizations, expires_at, " \
                  "rate_limit_per_minute, scopes_used, expiry_notified_at"
#define PSK_COLS "id, project_id, label, secure_value, mask_value, created_at, last_used_at, " \
                 "last_rolled_at, scopes, created_by, expires_at, rate_limit_per_minute, scopes_used, " \
                 "expiry_notified_at"

/* What a listing shows beside the row, read in the same statement so a
 * page of keys costs one query: the end of the previous value's grace
 * (expired rows are dropped by every roll, and the serializer compares
 * with now) and, for project keys, the creator. */
#define ROLLED_UNTIL(kind, table)                                                        \
    ", (SELECT MAX(r.expires_at) FROM rolled_key_values r WHERE r.kind = '" kind "' AND " \
    "r.key_id = " table ".id) AS previous_until, 1 AS joined"
#define PKEY_LISTED PKEY_COLS ROLLED_UNTIL("personal", "personal_api_keys")
/* The creator's users row, column by column (a row of a table with a
 * created_by column).  Aliased: a bare "id" output column would make ORDER
 * BY id ambiguous. */
#define CREATOR_COL(table, col) \
    "(SELECT u." col " FROM users u WHERE u.id = " table ".created_by) AS creator_" col
#define CREATOR(table)                                                                  \
    CREATOR_COL(table, "id") ", " CREATOR_COL(table, "uuid") ", " CREATOR_COL(table, "email") \
    ", " CREATOR_COL(table, "first_name") ", " CREATOR_COL(table, "is_active") ", "       \
    CREATOR_COL(table, "created_at")
#define PSK_LISTED \
    PSK_COLS ROLLED_UNTIL("secret", "project_secret_api_keys") ", " CREATOR("project_secret_api_keys")

/* The statements both key kinds share, written once over the kind's table,
 * owner column and columns. */
#define KEY_GET(table, owner, cols) "SELECT " cols " FROM " table " WHERE " owner " = ?1 AND id = ?2"
#define KEY_ROLL(table, owner)                                                                \
    "UPDATE " table " SET secure_value = ?3, mask_value = ?4, last_rolled_at = ?5 WHERE " owner \
    " = ?1 AND id = ?2"
#define KEY_DELETE(table, owner) "DELETE FROM " table " WHERE " owner " = ?1 AND id = ?2"
#define KEY_BY_HASH(table, cols) "SELECT " cols " FROM " table " WHERE secure_value = ?1"
/* A concurrent second UPDATE waits for the first, then re-checks the WHERE
 * clause against the new row and changes nothing. */
#define KEY_TOUCH(table)                                                       \
    "UPDATE " table " SET last_used_at = CAST(?2 AS BIGINT) WHERE id = ?1 "    \
    "AND (last_used_at IS NULL OR last_used_at <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT))"
/* The count check and the insert are one statement, so two concurrent
 * creations cannot both pass the limit: SQLite serializes writers, and
 * PostgreSQL's kw_*_insert functions (schema migration 2) lock the owner's
 * row first.  Either way a row comes back only when the key was inserted. */
#define KEY_INSERT(table, owner, cols, values, limit_param)                              \
    "INSERT INTO " table "(" cols ") SELECT " values " WHERE (SELECT COUNT(*) FROM " table \
    " WHERE " owner " = ?2) < CAST(" limit_param " AS INTEGER) RETURNING 1"

const struct kw_sql_text kw_sql[KW_SQL_COUNT] = {
    [KW_SQL_SCHEMA_VERSION] = {"SELECT COALESCE(MAX(version), 0) FROM schema_migrations"},
    [KW_SQL_AUTH_GENERATION] = {"SELECT value FROM kw_meta WHERE name = 'auth_generation'"},
    [KW_SQL_FLAGS_GENERATION] = {"SELECT value FROM kw_meta WHERE name = 'flags_generation'"},
    [KW_SQL_DIRECTORY_GENERATION] = {"SELECT value FROM kw_meta WHERE name = 'directory_generation'"},

    /* personal API keys: owner user_id */
    [KW_SQL_PKEY_INSERT] = {KEY_INSERT("personal_api_keys", "user_id", PKEY_COLS,
                                       "?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7, ?8, ?9, ?10, ?11, NULL, NULL",
                                       "?12"),
                            "SELECT 1 WHERE kw_pkey_insert(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?12, "
                            "?10, ?11)"},
    [KW_SQL_PKEY_GET] = {KEY_GET("personal_api_keys", "user_id", PKEY_LISTED)},
    [KW_SQL_PKEY_LIST] = {"SELECT " PKEY_LISTED " FROM personal_api_keys WHERE user_id = ?1 "
                          "ORDER BY created_at DESC, id DESC"},
    /* A new expiry re-arms its notices (expiry_notified_at, see
     * EXPIRY_DUE): the right-hand sides read the row before the update. */
#define NOTICE_REARM                                                                         \
    "expiry_notified_at = CASE WHEN COALESCE(expires_at, 0) = COALESCE(CAST(?5 AS BIGINT), 0) " \
    "THEN expiry_notified_at ELSE NULL END, "
    [KW_SQL_PKEY_UPDATE] = {"UPDATE personal_api_keys SET label = ?3, scopes = ?4, "
                            NOTICE_REARM "expires_at = ?5, "
                            "rate_limit_per_minute = ?6, scoped_teams = ?7, scoped_organizations = ?8 "
                            "WHERE user_id = ?1 AND id = ?2"},
    [KW_SQL_PKEY_ROLL] = {KEY_ROLL("personal_api_keys", "user_id")},
    [KW_SQL_PKEY_DELETE] = {KEY_DELETE("personal_api_keys", "user_id")},
    [KW_SQL_PKEY_BY_HASH] = {KEY_BY_HASH("personal_api_keys", PKEY_COLS)},
    [KW_SQL_PKEY_TOUCH] = {KEY_TOUCH("personal_api_keys")},

    /* project secret keys: owner project_id */
    [KW_SQL_PSK_INSERT] = {KEY_INSERT("project_secret_api_keys", "project_id", PSK_COLS,
                                      "?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?8, ?7, ?10, ?11, NULL, NULL",
                                      "?9"),
                           "SELECT 1 WHERE kw_psk_insert(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    [KW_SQL_PSK_GET] = {KEY_GET("project_secret_api_keys", "project_id", PSK_LISTED)},
    [KW_SQL_PSK_LIST] = {"SELECT " PSK_LISTED " FROM project_secret_api_keys WHERE project_id = ?1 "
                         "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"},
    [KW_SQL_PSK_COUNT] = {"SELECT COUNT(*) FROM project_secret_api_keys WHERE project_id = ?1"},
    [KW_SQL_PSK_UPDATE] = {"UPDATE project_secret_api_keys SET label = ?3, scopes = ?4, "
                           NOTICE_REARM "expires_at = ?5, rate_limit_per_minute = ?6 "
                           "WHERE project_id = ?1 AND id = ?2"},
#undef NOTICE_REARM
    [KW_SQL_PSK_ROLL] = {KEY_ROLL("project_secret_api_keys", "project_id")},
    [KW_SQL_PSK_DELETE] = {KEY_DELETE("project_secret_api_keys", "project_id")},
    [KW_SQL_PSK_BY_HASH] = {KEY_BY_HASH("project_secret_api_keys", PSK_COLS)},
    [KW_SQL_PSK_TOUCH] = {KEY_TOUCH("project_secret_api_keys")},

    /* The verification miss path: key and owner's active flag in one read
     * (one round trip, one WAL read-lock). */
    [KW_SQL_PKEY_AUTH_BY_HASH] = {"SELECT k.id, k.user_id, k.label, k.secure_value, k.mask_value, "
                                  "k.created_at, k.last_used_at, k.last_rolled_at, k.scopes, "
                                  "k.scoped_teams, k.scoped_organizations, k.expires_at, "
                                  "k.rate_limit_per_minute, k.scopes_used, k.expiry_notified_at, "
                                  "u.is_active "
                                  "FROM personal_api_keys k JOIN users u ON u.id = k.user_id "
                                  "WHERE k.secure_value = ?1"},
    [KW_SQL_PKEY_REHASH] = {"UPDATE personal_api_keys SET secure_value = ?3 "
                            "WHERE id = ?1 AND secure_value = ?2"},
    /* A range on the unique index: O(log n), not a scan, since it is asked
     * again whenever a legacy-length key misses. */
    [KW_SQL_PKEY_LEGACY_COUNT] = {"SELECT COUNT(*) FROM personal_api_keys "
                                  "WHERE secure_value >= 'pbkdf2_sha256$' "
                                  "AND secure_value < 'pbkdf2_sha256%'"},
    /* Its own column list (a column added to keys later is not imported);
     * numbered as a created key's insert, with the times a created key does
     * not have where the insert has its per-user limit. */
    /* Expiry notices (webhooks): a key whose expiry is within the lead
     * time (?2) with no notice since it entered that window ("expiring
     * soon"), or that has expired, within the last day, since its last
     * notice ("expired").  One column, expiry_notified_at, records both:
     * a notice before expires_at is the warning, one at or after it the
     * expiry; a new expires_at clears it (the key updates' NOTICE_REARM),
     * which re-arms both.  The mark is a
     * compare-and-set on the notice read, so of two instances sweeping at
     * once one announces a key. */
#define EXPIRY_DUE(table, cols)                                                                \
    "SELECT " cols " FROM " table " WHERE expires_at IS NOT NULL"                              \
    " AND expires_at <= CAST(?1 AS BIGINT) + CAST(?2 AS BIGINT)"                               \
    " AND expires_at > CAST(?1 AS BIGINT) - 86400000000"                                       \
    " AND (expiry_notified_at IS NULL OR expiry_notified_at < expires_at - CAST(?2 AS BIGINT)" \
    " OR (expires_at <= CAST(?1 AS BIGINT) AND expiry_notified_at < expires_at))"             \
    " ORDER BY expires_at, id LIMIT CAST(?3 AS BIGINT)"
#define EXPIRY_MARK(table)                                                               \
    "UPDATE " table " SET expiry_notified_at = CAST(?2 AS BIGINT) WHERE id = ?1"          \
    " AND expires_at = CAST(?3 AS BIGINT) AND COALESCE(expiry_notified_at, 0) = CAST(?4 AS BIGINT)"
    [KW_SQL_PKEY_EXPIRY_DUE] = {EXPIRY_DUE("personal_api_keys", PKEY_COLS)},
    [KW_SQL_PSK_EXPIRY_DUE] = {EXPIRY_DUE("project_secret_api_keys", PSK_COLS)},
    [KW_SQL_PKEY_EXPIRY_MARK] = {EXPIRY_MARK("personal_api_keys")},
    [KW_SQL_PSK_EXPIRY_MARK] = {EXPIRY_MARK("project_secret_api_keys")},
#undef EXPIRY_DUE
#undef EXPIRY_MARK
    [KW_SQL_IMPORT_PKEY] = {"INSERT INTO personal_api_keys(id, user_id, label, secure_value, "
                            "mask_value, created_at, scopes, scoped_teams, scoped_organizations, "
                            "expires_at, rate_limit_per_minute, last_used_at, last_rolled_at) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
                            "ON CONFLICT DO NOTHING"},

    /* users, organizations, memberships and projects (users.c) */
#define USER_COLS "id, uuid, email, first_name, is_active, created_at"
#define PROJECT_COLS "id, uuid, org_id, name, api_token, created_at"
    [KW_SQL_USER_COUNT] = {"SELECT COUNT(*) FROM users"},
    [KW_SQL_USER_INSERT] = {"INSERT INTO users(uuid, email, first_name, is_active, created_at) "
                            "VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER) <> 0, ?5) RETURNING id"},
    [KW_SQL_USER_GET] = {"SELECT " USER_COLS " FROM users WHERE id = ?1"},
    /* Addresses match whatever their case (an exact match first): an
     * invitation to A@Example.com is for the account a@example.com, not a
     * look-alike second one. */
    [KW_SQL_USER_BY_EMAIL] = {"SELECT " USER_COLS " FROM users WHERE lower(email) = lower(?1) "
                              "ORDER BY (email = ?1) DESC, id LIMIT 1"},
    [KW_SQL_USER_SET_ACTIVE] = {"UPDATE users SET is_active = CAST(?2 AS INTEGER) <> 0 WHERE id = ?1"},
    [KW_SQL_USER_LIST] = {"SELECT " USER_COLS " FROM users ORDER BY id"},
    [KW_SQL_ORG_INSERT] = {"INSERT INTO organizations(id, name, created_at) VALUES (?1, ?2, ?3)"},
    [KW_SQL_ORG_GET] = {"SELECT id, name, created_at FROM organizations WHERE id = ?1"},
    [KW_SQL_MEMBER_SET] = {"INSERT INTO memberships(user_id, org_id, level, created_at) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(user_id, org_id) DO UPDATE SET level = ?3"},
    [KW_SQL_MEMBER_LEVEL] = {"SELECT level FROM memberships WHERE user_id = ?1 AND org_id = ?2"},
    [KW_SQL_MEMBER_LEVEL_AT] = {"SELECT (SELECT value FROM kw_meta WHERE name = 'directory_generation'), "
                                "(SELECT level FROM memberships WHERE user_id = ?1 AND org_id = ?2)"},
    [KW_SQL_USER_ORGS] = {"SELECT o.id, o.name, o.created_at, m.level FROM organizations o "
                          "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = ?1 "
                          "ORDER BY o.created_at"},
    /* Ids are never reused (migration 11): SQLite would hand out
     * max(id) + 1, the id of a deleted newest project, so it numbers past
     * the tombstones too; PostgreSQL's identity sequence never goes back. */
    [KW_SQL_PROJECT_INSERT] = {"INSERT INTO projects(id, uuid, org_id, name, api_token, created_at) "
                               "VALUES (1 + MAX(COALESCE((SELECT MAX(id) FROM projects), 0), "
                               "COALESCE((SELECT MAX(id) FROM deleted_projects), 0)), "
                               "?1, ?2, ?3, ?4, ?5) RETURNING id",
                               "INSERT INTO projects(uuid, org_id, name, api_token, created_at) "
                               "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id"},
    [KW_SQL_PROJECT_GET] = {"SELECT " PROJECT_COLS " FROM projects WHERE id = ?1"},
    /* The verification miss path of public project tokens. */
    [KW_SQL_PROJECT_BY_TOKEN] = {"SELECT " PROJECT_COLS " FROM projects WHERE api_token = ?1"},
    [KW_SQL_USER_PROJECTS] = {"SELECT p.id, p.uuid, p.org_id, p.name, p.api_token, p.created_at "
                              "FROM projects p JOIN memberships m ON m.org_id = p.org_id "
                              "WHERE m.user_id = ?1 ORDER BY p.id"},
    [KW_SQL_PROJECT_SET_TOKEN] = {"UPDATE projects SET api_token = ?2 WHERE id = ?1"},
    [KW_SQL_PROJECT_LIST] = {"SELECT " PROJECT_COLS " FROM projects ORDER BY id"},
    /* The import keeps the rows' own ids (the last parameter, after the
     * ones a new row binds) and skips a row already there (changing
     * nothing, so the caller can tell). */
    [KW_SQL_IMPORT_USER] = {"INSERT INTO users(" USER_COLS ") VALUES (?6, ?1, ?2, ?3, "
                            "CAST(?4 AS INTEGER) <> 0, ?5) ON CONFLICT DO NOTHING"},
    [KW_SQL_IMPORT_ORG] = {"INSERT INTO organizations(id, name, created_at) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT DO NOTHING"},
    [KW_SQL_IMPORT_PROJECT] = {"INSERT INTO projects(" PROJECT_COLS ") "
                               "VALUES (?6, ?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING"},
    /* PostgreSQL's identity columns do not count imported ids: each
     * sequence moves past the largest id, so the next insert does not
     * collide with an imported row.  SQLite's INTEGER PRIMARY KEY already
     * continues after the largest id: kw_store_import_done runs this on
     * PostgreSQL only. */
    [KW_SQL_IMPORT_SEQUENCES] = {"SELECT setval(pg_get_serial_sequence('users', 'id'), "
                                 "GREATEST((SELECT MAX(id) FROM users), 1)), "
                                 "setval(pg_get_serial_sequence('projects', 'id'), "
                                 "GREATEST((SELECT MAX(id) FROM projects), "
                                 "(SELECT MAX(id) FROM deleted_projects), 1))"},

    /* managing organizations, projects and members (orgs.c).  Deleting an
     * organization or a project deletes what hangs off it by the schema's
     * ON DELETE CASCADE (projects, memberships, invitations; secret keys,
     * flags, events, endpoints), and every row trigger fires on the
     * cascade: each phs_ key and the phc_ token are logged as changes, so
     * every verifier forgets them. */
    [KW_SQL_ORG_RENAME] = {"UPDATE organizations SET name = ?2 WHERE id = ?1"},
    [KW_SQL_ORG_DELETE] = {"DELETE FROM organizations WHERE id = ?1"},
    /* Membership changes of one organization queue behind each other, so
     * the last-owner rule is read and kept in one step: SQLite's BEGIN
     * IMMEDIATE already serializes writers; PostgreSQL locks the row. */
    [KW_SQL_ORG_LOCK] = {"SELECT 1 FROM organizations WHERE id = ?1",
                         "SELECT 1 FROM organizations WHERE id = ?1 FOR UPDATE"},
    [KW_SQL_ORG_PROJECTS] = {"SELECT " PROJECT_COLS " FROM projects WHERE org_id = ?1 ORDER BY id"},
#define MEMBER_COLS "u.id, u.uuid, u.email, u.first_name, u.is_active, u.created_at, m.level, m.created_at"
    [KW_SQL_ORG_MEMBERS] = {"SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON u.id = m.user_id "
                            "WHERE m.org_id = ?1 ORDER BY m.created_at, u.id LIMIT ?2 OFFSET ?3"},
    [KW_SQL_ORG_MEMBER_COUNT] = {"SELECT COUNT(*) FROM memberships WHERE org_id = ?1 "
                                 "AND level >= CAST(?2 AS INTEGER)"},
    [KW_SQL_MEMBER_UPDATE] = {"UPDATE memberships SET level = CAST(?3 AS INTEGER) "
                              "WHERE user_id = ?1 AND org_id = ?2"},
    [KW_SQL_MEMBER_DELETE] = {"DELETE FROM memberships WHERE user_id = ?1 AND org_id = ?2"},
    [KW_SQL_MEMBER_BY_UUID] = {"SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON u.id = m.user_id "
                               "WHERE m.org_id = ?1 AND u.uuid = ?2"},
    [KW_SQL_PROJECT_RENAME] = {"UPDATE projects SET name = ?2 WHERE id = ?1"},
    [KW_SQL_PROJECT_DELETE] = {"DELETE FROM projects WHERE id = ?1"},

    /* feature flags (flags.c) */
#define FLAG_COLS "id, project_id, key, name, filters, active, deleted, " \
                  "ensure_experience_continuity, version, created_by, created_at, updated_at"
    [KW_SQL_FLAG_INSERT] = {"INSERT INTO feature_flags(project_id, key, name, filters, active, deleted, "
                            "ensure_experience_continuity, version, created_by, created_at, updated_at) "
                            "VALUES (?1, ?2, ?3, ?4, CAST(?5 AS INTEGER) <> 0, FALSE, "
                            "CAST(?6 AS INTEGER) <> 0, 1, ?7, ?8, ?8) RETURNING id"},
#define FLAG_LISTED FLAG_COLS ", 1 AS joined, " CREATOR("feature_flags")
    [KW_SQL_FLAG_GET] = {"SELECT " FLAG_LISTED " FROM feature_flags WHERE project_id = ?1 AND id = ?2"},
    [KW_SQL_FLAG_LIST_NEWEST] = {"SELECT " FLAG_LISTED " FROM feature_flags WHERE project_id = ?1 "
                                 "AND (CAST(?2 AS INTEGER) <> 0 OR NOT deleted) "
                                 "ORDER BY created_at DESC, id DESC"},
    [KW_SQL_FLAG_LIST_BY_KEY] = {"SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 "
                                 "AND (CAST(?2 AS INTEGER) <> 0 OR NOT deleted) ORDER BY key, id"},
    [KW_SQL_FLAG_UPDATE] = {"UPDATE feature_flags SET key = ?3, name = ?4, filters = ?5, "
                            "active = CAST(?6 AS INTEGER) <> 0, deleted = CAST(?7 AS INTEGER) <> 0, "
                            "ensure_experience_continuity = CAST(?8 AS INTEGER) <> 0, "
                            "version = version + 1, updated_at = ?9 WHERE project_id = ?1 AND id = ?2"},

    /* the activity log (activity.c) */
    [KW_SQL_ACTIVITY_INSERT] = {"INSERT INTO activity_log(id, project_id, org_id, user_id, activity, "
                                "scope, item_id, detail, ip_address, created_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},

    /* events and endpoints (events.c) */
    /* One statement per query kind, whatever the request: the optional
     * event filter is written in as "?3 IS NULL OR event = ?3" rather than
     * composed, at the price of reading by (project_id, timestamp) even
     * when an event is named.  Every kind takes ?1 project, ?2 bucket width
     * (µs, 0 = one bucket), ?3 event or NULL, ?4 from (inclusive), ?5 to
     * (exclusive), ?6 limit; the breakdown adds ?7, the property key.
     * Aggregates return (bucket, count, key); ordering by an expression
     * over an output column needs the subquery on PostgreSQL. */
#define EV_BUCKET "CASE WHEN CAST(?2 AS BIGINT) > 0 " \
                  "THEN (timestamp / CAST(?2 AS BIGINT)) * CAST(?2 AS BIGINT) ELSE 0 END"
#define EV_WHERE "project_id = ?1 AND (CAST(?3 AS TEXT) IS NULL OR event = CAST(?3 AS TEXT)) " \
                 "AND timestamp >= CAST(?4 AS BIGINT) AND timestamp < CAST(?5 AS BIGINT)"
#define EV_BREAKDOWN(value, collate)                                                     \
    "SELECT bucket, n, value FROM (SELECT " EV_BUCKET " AS bucket, " value " AS value, " \
    "COUNT(*) AS n FROM events WHERE " EV_WHERE " GROUP BY 1, 2) AS g "                 \
    "ORDER BY bucket, n DESC, value IS NULL, value" collate " LIMIT ?6"
#define EV_RECENT(bytes)                                                                   \
    "SELECT e.id, e.uuid, e.timestamp, e.created_at, e.event, e.distinct_id, "             \
    "CASE WHEN r.upto <= CAST(?7 AS BIGINT) THEN e.properties END "                        \
    "FROM (SELECT id, len, SUM(len) OVER (ORDER BY timestamp DESC, id DESC "               \
    "ROWS UNBOUNDED PRECEDING) AS upto FROM (SELECT id, timestamp, " bytes " AS len "      \
    "FROM events WHERE " EV_WHERE " AND CAST(?2 AS BIGINT) IS NOT NULL "                   \
    "ORDER BY timestamp DESC, id DESC LIMIT ?6) AS w) AS r JOIN events AS e ON e.id = r.id " \
    "WHERE r.upto - r.len <= CAST(?7 AS BIGINT) ORDER BY r.upto"
#define EP_COLS \
    "id, project_id, name, description, query, variables, created_by, created_at, updated_at"
    /* A batch: 16 rows (or one) per step on SQLite, inside one
     * transaction; on PostgreSQL the columns travel as array parameters
     * and one statement writes every row (one round trip, atomic), in
     * batch order.  There the events table has no foreign key (a per-row
     * check): the statement locks the project's row once and writes
     * nothing when it is gone (store_schema_pg.c, migration 17). */
    [KW_SQL_EV_INSERT] = {"INSERT INTO events(project_id, uuid, event, distinct_id, properties, "
                          "timestamp, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                          "WITH project AS (SELECT id FROM projects WHERE id = CAST(?1 AS BIGINT) "
                          "FOR KEY SHARE) "
                          "INSERT INTO events(project_id, uuid, event, distinct_id, properties, "
                          "timestamp, created_at) SELECT project.id, u, e, d, p, t, c FROM project, "
                          "unnest(CAST(?2 AS TEXT[]), CAST(?3 AS TEXT[]), CAST(?4 AS TEXT[]), "
                          "CAST(?5 AS TEXT[]), CAST(?6 AS BIGINT[]), CAST(?7 AS BIGINT[])) "
                          "WITH ORDINALITY AS x(u, e, d, p, t, c, o) ORDER BY o"},
    /* SQLite writes a batch 16 rows per statement (EV_ROWS_PER_INSERT in
     * events.c): the statement opens its table and index cursors once for
     * all of them, which saves about a third of SQLite's work per captured
     * event.  Row r's columns are ?(2 + 6r)..?(7 + 6r); ?1 is the project.
     * Never run on PostgreSQL, whose batch is one statement already. */
#define EV_ROW(u, e, d, p, t, c) "(?1, ?" #u ", ?" #e ", ?" #d ", ?" #p ", ?" #t ", ?" #c ")"
    [KW_SQL_EV_INSERT_ROWS] = {"INSERT INTO events(project_id, uuid, event, distinct_id, "
                               "properties, timestamp, created_at) VALUES "
                               EV_ROW(2, 3, 4, 5, 6, 7) "," EV_ROW(8, 9, 10, 11, 12, 13) ","
                               EV_ROW(14, 15, 16, 17, 18, 19) "," EV_ROW(20, 21, 22, 23, 24, 25) ","
                               EV_ROW(26, 27, 28, 29, 30, 31) "," EV_ROW(32, 33, 34, 35, 36, 37) ","
                               EV_ROW(38, 39, 40, 41, 42, 43) "," EV_ROW(44, 45, 46, 47, 48, 49) ","
                               EV_ROW(50, 51, 52, 53, 54, 55) "," EV_ROW(56, 57, 58, 59, 60, 61) ","
                               EV_ROW(62, 63, 64, 65, 66, 67) "," EV_ROW(68, 69, 70, 71, 72, 73) ","
                               EV_ROW(74, 75, 76, 77, 78, 79) "," EV_ROW(80, 81, 82, 83, 84, 85) ","
                               EV_ROW(86, 87, 88, 89, 90, 91) "," EV_ROW(92, 93, 94, 95, 96, 97)},
#undef EV_ROW
    [KW_SQL_EV_COUNTS] = {"SELECT bucket, n, event FROM (SELECT " EV_BUCKET " AS bucket, event, "
                          "COUNT(*) AS n FROM events WHERE " EV_WHERE " GROUP BY 1, 2) AS g "
                          "ORDER BY bucket, n DESC, event LIMIT ?6"},
    [KW_SQL_EV_UNIQUE] = {"SELECT bucket, n, NULL FROM (SELECT " EV_BUCKET " AS bucket, "
                          "COUNT(DISTINCT distinct_id) AS n FROM events WHERE " EV_WHERE
                          " GROUP BY 1) AS g ORDER BY bucket LIMIT ?6"},
    /* The property's value as text, as PostgreSQL's ->> gives it (strings
     * bare, true/false as words, objects and arrays as JSON, JSON null as
     * NULL), read by an exact key: a key with dots or quotes is just a key,
     * never a path.  Text sorts bytewise on both. */
    [KW_SQL_EV_BREAKDOWN] = {EV_BREAKDOWN("(SELECT CASE j.type WHEN 'true' THEN 'true' "
                                          "WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
                                          "ELSE CAST(j.value AS TEXT) END FROM "
                                          "json_each(events.properties) AS j "
                                          "WHERE j.key = ?7 LIMIT 1)",
                                          ""),
                             EV_BREAKDOWN("CAST(properties AS JSONB) ->> CAST(?7 AS TEXT)",
                                          " COLLATE \"C\"")},
    /* ?2 is unused here but named, so every kind binds the same parameters.
     * ?7 is a budget of properties bytes: the newest rows are kept while
     * their properties add up to at most ?7, and the first row past it
     * comes with NULL properties (the caller's sign that the answer was
     * cut there).  The running sum is taken over ids and lengths only and
     * properties are read for the rows kept, so neither backend holds more
     * than the budget (PostgreSQL sends its whole result at once).
     * SQLite's length() of text counts characters, hence the BLOB. */
    [KW_SQL_EV_RECENT] = {EV_RECENT("LENGTH(CAST(properties AS BLOB))"),
                          EV_RECENT("OCTET_LENGTH(properties)")},
    [KW_SQL_EP_INSERT] = {"INSERT INTO endpoints(project_id, name, description, query, variables, "
                          "created_by, created_at, updated_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id"},
    [KW_SQL_EP_GET] = {"SELECT " EP_COLS " FROM endpoints WHERE project_id = ?1 AND name = ?2"},
    [KW_SQL_EP_LIST] = {"SELECT " EP_COLS ", 1 AS joined, " CREATOR("endpoints")
                        " FROM endpoints WHERE project_id = ?1 "
                        "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"},
    [KW_SQL_EP_COUNT] = {"SELECT COUNT(*) FROM endpoints WHERE project_id = ?1"},
    [KW_SQL_EP_UPDATE] = {"UPDATE endpoints SET name = ?3, description = ?4, query = ?5, "
                          "variables = ?6, updated_at = ?7 WHERE project_id = ?1 AND id = ?2"},
    [KW_SQL_EP_DELETE] = {"DELETE FROM endpoints WHERE project_id = ?1 AND id = ?2"},

    /* console sessions, invites, passwords, sign-in failures (console.c) */
#define SESSION_COLS "s.token_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, u.is_active"
#define INVITE_COLS "id, org_id, token_hash, target_email, level, created_by, created_at, " \
                    "expires_at, accepted_at"
    [KW_SQL_PASSWORD_GET] = {"SELECT password_hash FROM users WHERE id = ?1"},
    [KW_SQL_PASSWORD_SET] = {"UPDATE users SET password_hash = ?2 WHERE id = ?1"},
    [KW_SQL_SESSION_INSERT] = {"INSERT INTO sessions(token_hash, user_id, created_at, last_seen_at, "
                               "expires_at) VALUES (?1, ?2, ?3, ?4, ?5)"},
    [KW_SQL_SESSION_GET] = {"SELECT " SESSION_COLS " FROM sessions s "
                            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1"},
    [KW_SQL_SESSION_TOUCH] = {"UPDATE sessions SET last_seen_at = CAST(?2 AS BIGINT) "
                              "WHERE token_hash = ?1 "
                              "AND last_seen_at <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT)"},
    [KW_SQL_SESSION_DELETE] = {"DELETE FROM sessions WHERE token_hash = ?1"},
    [KW_SQL_SESSION_DELETE_USER] = {"DELETE FROM sessions WHERE user_id = ?1"},
    /* A user's sessions past their limits, and all but the newest ?4. */
    [KW_SQL_SESSION_PRUNE_USER] = {"DELETE FROM sessions WHERE user_id = ?1 "
                                   "AND (expires_at <= CAST(?2 AS BIGINT) "
                                   "OR last_seen_at <= CAST(?3 AS BIGINT) "
                                   "OR token_hash NOT IN (SELECT token_hash FROM sessions "
                                   "WHERE user_id = ?1 ORDER BY created_at DESC, token_hash "
                                   "LIMIT CAST(?4 AS BIGINT)))"},
    [KW_SQL_INVITE_INSERT] = {"INSERT INTO invites(" INVITE_COLS ") "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)"},
    [KW_SQL_INVITE_BY_HASH] = {"SELECT " INVITE_COLS " FROM invites WHERE token_hash = ?1"},
    /* A concurrent second UPDATE waits for the first, re-checks
     * accepted_at IS NULL on the new row and changes nothing: a link works
     * once. */
    [KW_SQL_INVITE_ACCEPT] = {"UPDATE invites SET accepted_at = CAST(?2 AS BIGINT) WHERE id = ?1 "
                              "AND accepted_at IS NULL AND expires_at > CAST(?2 AS BIGINT)"},
    /* An organization's pending invitations: unused and unexpired at ?2. */
    [KW_SQL_INVITE_LIST] = {"SELECT " INVITE_COLS " FROM invites WHERE org_id = ?1 "
                            "AND accepted_at IS NULL AND expires_at > CAST(?2 AS BIGINT) "
                            "ORDER BY created_at DESC, id LIMIT ?3 OFFSET ?4"},
    [KW_SQL_INVITE_COUNT] = {"SELECT COUNT(*) FROM invites WHERE org_id = ?1 "
                             "AND accepted_at IS NULL AND expires_at > CAST(?2 AS BIGINT)"},
    /* Finds and deletes in one statement, among the organization's pending
     * invitations only: another organization's id never matches. */
    [KW_SQL_INVITE_DELETE] = {"DELETE FROM invites WHERE id = ?1 AND org_id = ?2 "
                              "AND accepted_at IS NULL AND expires_at > CAST(?3 AS BIGINT) "
                              "RETURNING " INVITE_COLS},
    [KW_SQL_LOGIN_FAILURE_PRUNE] = {"DELETE FROM login_attempts WHERE key = ?1 AND at < ?2"},
    [KW_SQL_LOGIN_FAILURE_INSERT] = {"INSERT INTO login_attempts(key, at) VALUES (?1, ?2)"},
    [KW_SQL_LOGIN_FAILURE_NTH] = {"SELECT at FROM login_attempts WHERE key = ?1 AND at > ?2 "
                                  "ORDER BY at DESC LIMIT 1 OFFSET ?3"},
    [KW_SQL_LOGIN_FAILURE_CLEAR] = {"DELETE FROM login_attempts WHERE key = ?1"},
    /* Every key's failures before ?1, at most ?2 of them, picked by the
     * row's physical id (the table has no key of its own).  No index on
     * `at` alone: once swept the table holds one window of failures, which
     * the password-hash budget keeps to a few thousand rows per instance,
     * so the scan is short and a batch holds the write lock briefly. */
    [KW_SQL_LOGIN_FAILURE_SWEEP] = {"DELETE FROM login_attempts WHERE rowid IN "
                                    "(SELECT rowid FROM login_attempts WHERE at < ?1 LIMIT ?2)",
                                    "DELETE FROM login_attempts WHERE ctid = ANY(ARRAY("
                                    "SELECT ctid FROM login_attempts WHERE at < ?1 LIMIT ?2))"},
    [KW_SQL_META_SECRET_INSERT] = {"INSERT INTO kw_meta(name, value, text_value) VALUES (?1, 0, ?2) "
                                   "ON CONFLICT(name) DO NOTHING"},
    [KW_SQL_META_SECRET_GET] = {"SELECT text_value FROM kw_meta WHERE name = ?1"},

    /* rolled values and key lifecycle (lifecycle.c) */

    /* the change log of generations (changes.c): ranges of its primary key */
    [KW_SQL_CHANGES_SINCE] = {"SELECT generation, kind, ref FROM kw_changes "
                              "WHERE stream = CAST(?1 AS INTEGER) AND generation > CAST(?2 AS BIGINT) "
                              "AND generation <= CAST(?3 AS BIGINT) ORDER BY generation"},
    [KW_SQL_CHANGES_PRUNE] = {"DELETE FROM kw_changes WHERE stream = CAST(?1 AS INTEGER) "
                              "AND generation <= CAST(?2 AS BIGINT)"},

    [KW_SQL_ROLLED_DELETE] = {"DELETE FROM rolled_key_values WHERE (kind = ?1 AND key_id = ?2) "
                              "OR expires_at <= ?3"},
    [KW_SQL_ROLLED_INSERT] = {"INSERT INTO rolled_key_values(secure_value, kind, key_id, expires_at) "
                              "VALUES (?1, ?2, ?3, ?4)"},
    [KW_SQL_ROLLED_GET] = {"SELECT r.kind, r.expires_at, COALESCE(p.secure_value, s.secure_value) "
                           "FROM rolled_key_values r "
                           "LEFT JOIN personal_api_keys p ON r.kind = 'personal' AND p.id = r.key_id "
                           "LEFT JOIN project_secret_api_keys s ON r.kind = 'secret' "
                           "AND s.id = r.key_id WHERE r.secure_value = ?1"},
    [KW_SQL_ROLLED_EXPIRY] = {"SELECT COALESCE(MAX(expires_at), 0) FROM rolled_key_values "
                              "WHERE kind = ?1 AND key_id = ?2 AND expires_at > ?3"},
    [KW_SQL_ROLLED_LIVE] = {"SELECT COUNT(*) FROM rolled_key_values WHERE expires_at > ?1"},

/* The batched writes of lifecycle.c: on SQLite the statement for one key
 * (?1 its id), run per key in one transaction; on PostgreSQL one statement
 * for the whole batch of a key kind, ?1 the ids and ?2 the values as
 * array parameters joined with unnest.
 *
 * The scope-usage merge: the union of the stored list and the new one,
 * sorted.  On PostgreSQL (ids distinct within a call: UPDATE … FROM
 * applies one match) each row's new value is computed from the row it
 * updates, so under READ COMMITTED a concurrent merge of the same row
 * waits for the first and is re-evaluated against its result: no scope is
 * lost.  The rows are locked first, in id order (ORDER BY … FOR NO KEY
 * UPDATE below a MATERIALIZED CTE: the lock step runs above the sort), so
 * two instances merging overlapping batches queue instead of deadlocking. */
#define SCOPES_USED(table)                                                                  \
    "UPDATE " table " SET scopes_used = (SELECT json_group_array(value) FROM ("             \
    "SELECT value FROM json_each(COALESCE(scopes_used, '[]')) UNION "                       \
    "SELECT value FROM json_each(?2) ORDER BY 1)) WHERE id = ?1"
#define SCOPES_USED_PG(table)                                                               \
    "WITH n AS MATERIALIZED (SELECT k.id, u.used FROM " table " k"                          \
    " JOIN unnest(?1::text[], ?2::text[]) AS u(id, used) ON k.id = u.id"                    \
    " ORDER BY k.id FOR NO KEY UPDATE OF k)"                                                \
    " UPDATE " table " k SET scopes_used = (SELECT COALESCE(json_agg(v ORDER BY v), '[]')::text" \
    " FROM (SELECT jsonb_array_elements_text(COALESCE(k.scopes_used, '[]')::jsonb) AS v UNION" \
    " SELECT jsonb_array_elements_text(n.used::jsonb)) s) FROM n WHERE k.id = n.id"
/* The last_used_at batch.  SQLite runs the single-key touch per key
 * (kw_store_pkey_touch / psk_touch), so the SQLite text of these rows is
 * that statement and is not run through them.  On PostgreSQL repeated ids are folded to
 * their latest time first (GROUP BY), since UPDATE … FROM would apply an
 * arbitrary one of several matches; the touch's condition (NULL, or at
 * least ?3 older) is in the lock step, so rows that need no write are not
 * locked, and again in the UPDATE, where it is re-checked against a row
 * another instance wrote meanwhile: last_used_at never moves backwards and
 * concurrent drains write once. */
#define TOUCH_MANY_PG(table)                                                                \
    "WITH u AS (SELECT id, max(t) AS t FROM unnest(?1::text[], ?2::bigint[]) AS u(id, t)"    \
    " GROUP BY id), n AS MATERIALIZED (SELECT k.id, u.t FROM " table " k JOIN u ON k.id = u.id" \
    " WHERE k.last_used_at IS NULL OR k.last_used_at <= u.t - ?3::bigint"                    \
    " ORDER BY k.id FOR NO KEY UPDATE OF k)"                                                 \
    " UPDATE " table " k SET last_used_at = n.t FROM n WHERE k.id = n.id"                    \
    " AND (k.last_used_at IS NULL OR k.last_used_at <= n.t - ?3::bigint)"
    [KW_SQL_PKEY_SCOPES_USED] = {SCOPES_USED("personal_api_keys"),
                                 SCOPES_USED_PG("personal_api_keys")},
    [KW_SQL_PSK_SCOPES_USED] = {SCOPES_USED("project_secret_api_keys"),
                                SCOPES_USED_PG("project_secret_api_keys")},
    [KW_SQL_PKEY_TOUCH_MANY] = {KEY_TOUCH("personal_api_keys"), TOUCH_MANY_PG("personal_api_keys")},
    [KW_SQL_PSK_TOUCH_MANY] = {KEY_TOUCH("project_secret_api_keys"),
                               TOUCH_MANY_PG("project_secret_api_keys")},

    /* a project's browser SDK settings (project_settings.c) */
    [KW_SQL_PROJECT_SETTINGS_GET] = {"SELECT autocapture_opt_out, capture_performance_opt_in, "
                                     "heatmaps_opt_in FROM projects WHERE id = ?1"},
    [KW_SQL_PROJECT_SETTINGS_SET] = {"UPDATE projects SET "
                                     "autocapture_opt_out = COALESCE(?2, autocapture_opt_out), "
                                     "capture_performance_opt_in = "
                                     "COALESCE(?3, capture_performance_opt_in), "
                                     "heatmaps_opt_in = COALESCE(?4, heatmaps_opt_in) "
                                     "WHERE id = ?1"},

    /* a project's group types (group_types.c).  The next index is computed
     * by the insert itself and is unique per project, so two writers never
     * share one; none is added past index 4. */
    [KW_SQL_GROUP_TYPES] = {"SELECT project_id, group_type, group_type_index, "
                            "COALESCE(name_singular, ''), COALESCE(name_plural, ''), created_at "
                            "FROM group_type_mappings WHERE project_id = ?1 "
                            "ORDER BY group_type_index"},
    [KW_SQL_GROUP_TYPE_ADD] = {"INSERT INTO group_type_mappings(project_id, group_type, "
                               "group_type_index, created_at) "
                               "SELECT CAST(?1 AS BIGINT), ?2, t.n, CAST(?3 AS BIGINT) FROM "
                               "(SELECT COALESCE(MAX(group_type_index) + 1, 0) AS n "
                               "FROM group_type_mappings WHERE project_id = CAST(?1 AS BIGINT)) t "
                               "WHERE t.n < 5"},
    [KW_SQL_GROUP_TYPE_HAS] = {"SELECT COUNT(*) FROM group_type_mappings "
                               "WHERE project_id = ?1 AND group_type = ?2"},
    [KW_SQL_GROUP_TYPE_RENAME] = {"UPDATE group_type_mappings SET name_singular = ?3, "
                                  "name_plural = ?4 WHERE project_id = ?1 AND group_type_index = ?2"},
    /* an organization's webhooks and their outbox (webhooks.c).  The
     * secret is read only where a delivery is signed (BY_ID) and by the
     * create that hands it out; listings never select it. */
#define WEBHOOK_COLS "id, org_id, url, events, enabled, created_by, created_at, failures, " \
                     "COALESCE(held_until, 0)"
#define OUTBOX_COLS "id, webhook_id, event, payload, created_at, attempts, " \
                    "COALESCE(next_attempt_at, 0), COALESCE(last_attempt_at, 0), " \
                    "COALESCE(delivered_at, 0), COALESCE(last_status, 0), " \
                    "COALESCE(last_latency_ms, 0), COALESCE(last_error, '')"
    [KW_SQL_WEBHOOK_INSERT] = {"INSERT INTO webhooks(id, org_id, url, secret, events, enabled, "
                               "created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, "
                               "CAST(?6 AS INTEGER), CAST(?7 AS BIGINT), CAST(?8 AS BIGINT))"},
    [KW_SQL_WEBHOOK_GET] = {"SELECT " WEBHOOK_COLS ", '' FROM webhooks WHERE org_id = ?1 AND id = ?2"},
    [KW_SQL_WEBHOOK_BY_ID] = {"SELECT " WEBHOOK_COLS ", secret FROM webhooks WHERE id = ?1"},
    [KW_SQL_WEBHOOK_LIST] = {"SELECT " WEBHOOK_COLS ", '' FROM webhooks WHERE org_id = ?1 "
                             "ORDER BY created_at, id LIMIT CAST(?2 AS BIGINT) "
                             "OFFSET CAST(?3 AS BIGINT)"},
    [KW_SQL_WEBHOOK_COUNT] = {"SELECT COUNT(*) FROM webhooks WHERE org_id = ?1"},
    [KW_SQL_WEBHOOK_UPDATE] = {"UPDATE webhooks SET url = ?3, events = ?4, "
                               "enabled = CAST(?5 AS INTEGER) WHERE org_id = ?1 AND id = ?2"},
    [KW_SQL_WEBHOOK_DELETE] = {"DELETE FROM webhooks WHERE org_id = ?1 AND id = ?2"},
    [KW_SQL_WEBHOOK_TARGETS] = {"SELECT id, events FROM webhooks WHERE org_id = ?1 AND enabled <> 0 "
                                "ORDER BY id"},
    /* Nothing is written when the webhook already has ?6 rows to deliver
     * (the caller sees no change).  Two transactions racing on PostgreSQL
     * may each pass the count once: the bound holds to within the number
     * of concurrent writers. */
    [KW_SQL_OUTBOX_INSERT] = {"INSERT INTO webhook_outbox(id, webhook_id, event, payload, created_at, "
                              "attempts, next_attempt_at) SELECT ?1, ?2, ?3, ?4, "
                              "CAST(?5 AS BIGINT), 0, CAST(?5 AS BIGINT) "
                              "WHERE (SELECT COUNT(*) FROM webhook_outbox WHERE webhook_id = ?2 "
                              "AND next_attempt_at IS NOT NULL) < CAST(?6 AS BIGINT)"},
    /* One due row of a webhook not held, moved a lease ahead (?2) with its
     * attempt counted; webhooks without failures go first, so a failing
     * receiver's retries wait behind every healthy delivery.  The caller
     * holds the row's webhook (WEBHOOK_HOLD) in the same transaction.
     * SQLite runs one writer at a time, so two senders on one file never
     * take the same row or webhook; PostgreSQL's SKIP LOCKED, over the row
     * and its webhook, lets several instances claim rows of different
     * webhooks at once, and re-reads the webhook's hold when it waited. */
    [KW_SQL_OUTBOX_CLAIM] = {"UPDATE webhook_outbox SET next_attempt_at = ?2, attempts = attempts + 1 "
                             "WHERE id = (SELECT o.id FROM webhook_outbox o JOIN webhooks w "
                             "ON w.id = o.webhook_id WHERE o.next_attempt_at <= ?1 "
                             "AND (w.held_until IS NULL OR w.held_until <= ?1) "
                             "ORDER BY w.failures > 0, o.next_attempt_at, o.created_at LIMIT 1) "
                             "RETURNING " OUTBOX_COLS,
                             "UPDATE webhook_outbox o SET next_attempt_at = ?2::bigint, "
                             "attempts = o.attempts + 1 FROM (SELECT o2.id FROM webhook_outbox o2 "
                             "JOIN webhooks w ON w.id = o2.webhook_id "
                             "WHERE o2.next_attempt_at <= ?1::bigint "
                             "AND (w.held_until IS NULL OR w.held_until <= ?1::bigint) "
                             "ORDER BY w.failures > 0, o2.next_attempt_at, o2.created_at LIMIT 1 "
                             "FOR UPDATE OF o2, w SKIP LOCKED) d WHERE o.id = d.id RETURNING o.id, "
                             "o.webhook_id, o.event, o.payload, o.created_at, o.attempts, "
                             "COALESCE(o.next_attempt_at, 0), COALESCE(o.last_attempt_at, 0), "
                             "COALESCE(o.delivered_at, 0), COALESCE(o.last_status, 0), "
                             "COALESCE(o.last_latency_ms, 0), COALESCE(o.last_error, '')"},
    [KW_SQL_OUTBOX_RESULT] = {"UPDATE webhook_outbox SET next_attempt_at = CAST(?2 AS BIGINT), "
                              "last_attempt_at = CAST(?3 AS BIGINT), "
                              "delivered_at = CAST(?4 AS BIGINT), last_status = CAST(?5 AS INTEGER), "
                              "last_latency_ms = CAST(?6 AS BIGINT), last_error = ?7 WHERE id = ?1"},
    [KW_SQL_OUTBOX_LIST] = {"SELECT " OUTBOX_COLS " FROM webhook_outbox WHERE webhook_id = ?1 "
                            "ORDER BY created_at DESC, id LIMIT CAST(?2 AS BIGINT) "
                            "OFFSET CAST(?3 AS BIGINT)"},
    [KW_SQL_OUTBOX_COUNT] = {"SELECT COUNT(*) FROM webhook_outbox WHERE webhook_id = ?1"},
    /* Finished rows (delivered or given up) past the delivery log's
     * retention. */
    [KW_SQL_OUTBOX_PRUNE] = {"DELETE FROM webhook_outbox WHERE next_attempt_at IS NULL "
                             "AND created_at < CAST(?1 AS BIGINT)"},
    [KW_SQL_OUTBOX_BACKLOG] = {"SELECT COUNT(*) FROM webhook_outbox WHERE next_attempt_at IS NOT NULL"},
    [KW_SQL_WEBHOOK_HOLD] = {"UPDATE webhooks SET held_until = CAST(?2 AS BIGINT) WHERE id = ?1"},
    [KW_SQL_WEBHOOK_RELEASE] = {"UPDATE webhooks SET failures = CAST(?2 AS INTEGER), "
                                "held_until = CAST(?3 AS BIGINT) WHERE id = ?1"},
    [KW_SQL_OUTBOX_PENDING_TEST] = {"SELECT COALESCE(MAX(next_attempt_at), 0) FROM webhook_outbox "
                                    "WHERE webhook_id = ?1 AND event = 'webhook.test' "
                                    "AND next_attempt_at IS NOT NULL"},
    /* Rows past their day that a held webhook kept from being attempted:
     * given up like a row whose last attempt failed past its day. */
    [KW_SQL_OUTBOX_EXPIRE] = {"UPDATE webhook_outbox SET next_attempt_at = NULL, "
                              "last_error = COALESCE(last_error, 'not attempted: the webhook was "
                              "failing') WHERE next_attempt_at IS NOT NULL "
                              "AND created_at < CAST(?1 AS BIGINT) "
                              "AND next_attempt_at <= CAST(?2 AS BIGINT) "
                              "AND webhook_id IN (SELECT id FROM webhooks WHERE failures > 0)"},
#undef WEBHOOK_COLS
#undef OUTBOX_COLS
};
