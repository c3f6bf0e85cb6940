/* store_schema_sqlite.c — the SQLite schema, as numbered migrations.
 *
 * Times are INTEGER microseconds since the epoch.  Key tables hold only the
 * hash (secure_value, unique: verification is one index probe) and the
 * mask.  scopes / scoped_teams / scoped_organizations are JSON array text;
 * NULL scopes means no access (only imported legacy rows have it). */
#include "store/store_schema.h"

const char *const kw_sqlite_migrations[] = {
    /* 1: foundation */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  email TEXT NOT NULL UNIQUE,"
    "  first_name TEXT NOT NULL DEFAULT '',"
    "  password_hash TEXT,"
    "  is_active INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE organizations ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE memberships ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  level INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, org_id));"
    "CREATE INDEX memberships_org ON memberships(org_id);"
    "CREATE TABLE projects ("
    "  id INTEGER PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  api_token TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX projects_org ON projects(org_id);"
    "CREATE TABLE personal_api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  label TEXT NOT NULL,"
    "  secure_value TEXT NOT NULL UNIQUE,"
    "  mask_value TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER,"
    "  last_rolled_at INTEGER,"
    "  scopes TEXT,"
    "  scoped_teams TEXT,"
    "  scoped_organizations TEXT);"
    "CREATE INDEX personal_api_keys_user ON personal_api_keys(user_id, created_at);"
    "CREATE TABLE project_secret_api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  label TEXT NOT NULL,"
    "  secure_value TEXT NOT NULL UNIQUE,"
    "  mask_value TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  last_used_at INTEGER,"
    "  last_rolled_at INTEGER,"
    "  scopes TEXT NOT NULL,"
    "  UNIQUE (project_id, label));"
    "CREATE INDEX project_secret_api_keys_project ON project_secret_api_keys(project_id, created_at);"
    "CREATE TABLE feature_flags ("
    "  id INTEGER PRIMARY KEY,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  filters TEXT NOT NULL,"
    "  active INTEGER NOT NULL DEFAULT 1,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  ensure_experience_continuity INTEGER NOT NULL DEFAULT 0,"
    "  version INTEGER NOT NULL DEFAULT 1,"
    "  created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX feature_flags_live_key ON feature_flags(project_id, key) WHERE deleted = 0;"
    "CREATE TABLE activity_log ("
    "  id TEXT PRIMARY KEY,"
    "  project_id INTEGER,"
    "  org_id TEXT,"
    "  user_id INTEGER,"
    "  activity TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  item_id TEXT,"
    "  detail TEXT NOT NULL,"
    "  ip_address TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX activity_log_project ON activity_log(project_id, created_at, id);",
    /* 2: nothing for SQLite.  PostgreSQL's migration 2 adds kw_psk_insert();
     * SQLite needs no function for an atomic limit check (writers are
     * serialized), but the numbers stay aligned so a version means the
     * same schema on both backends. */
    "SELECT 1;",

    /* 3: the auth generation — bumped, in the writing transaction, by every
     * change that can alter a verification result, so verification caches in
     * other processes and instances notice by reading one row.  last_used_at
     * touches are not among them (they would flush caches hourly). */
    "CREATE TABLE kw_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO kw_meta VALUES ('auth_generation', 1);"
    "CREATE TRIGGER personal_api_keys_auth_update AFTER UPDATE OF secure_value, scopes, "
    "  scoped_teams, scoped_organizations, user_id ON personal_api_keys BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER personal_api_keys_auth_delete AFTER DELETE ON personal_api_keys BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER project_secret_api_keys_auth_update AFTER UPDATE OF secure_value, scopes, "
    "  project_id ON project_secret_api_keys BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER project_secret_api_keys_auth_delete AFTER DELETE ON project_secret_api_keys BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER users_auth_update AFTER UPDATE OF is_active ON users BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER users_auth_delete AFTER DELETE ON users BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;",

    /* 4: the flags generation — bumped by every write to feature_flags, so
     * flag definition caches in other processes notice by reading one row
     * (lib/flags/flagcache.c).  A project's phc_ token is cached by the
     * verification cache, so changing or deleting it bumps the auth
     * generation like a key change does. */
    "INSERT INTO kw_meta VALUES ('flags_generation', 1);"
    "CREATE TRIGGER feature_flags_gen_insert AFTER INSERT ON feature_flags BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'flags_generation'; END;"
    "CREATE TRIGGER feature_flags_gen_update AFTER UPDATE ON feature_flags BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'flags_generation'; END;"
    "CREATE TRIGGER feature_flags_gen_delete AFTER DELETE ON feature_flags BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'flags_generation'; END;"
    "CREATE TRIGGER projects_auth_token AFTER UPDATE OF api_token ON projects BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER projects_auth_delete AFTER DELETE ON projects BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;",

    /* 5: captured events and endpoints.  properties is the
     * event's JSON object as text; queries read it with json_each.  Two
     * indexes serve the endpoint query kinds: by time, and by event then
     * time.  Endpoint names are unique per project; deletes are hard. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  uuid TEXT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  distinct_id TEXT NOT NULL,"
    "  properties TEXT NOT NULL,"
    "  timestamp INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX events_project_time ON events(project_id, timestamp);"
    "CREATE INDEX events_project_event_time ON events(project_id, event, timestamp);"
    "CREATE TABLE endpoints ("
    "  id INTEGER PRIMARY KEY,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  query TEXT NOT NULL,"
    "  variables TEXT NOT NULL,"
    "  created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  UNIQUE (project_id, name));",

    /* 6: key lifecycle: expiry, per-key rate limit, scopes used.
     * expires_at and rate_limit_per_minute change what verification answers
     * (the cache carries both), so the auth generation triggers are
     * recreated with them in their column lists; scopes_used is not there:
     * the usage flush must not drop every cache. */
    "ALTER TABLE personal_api_keys ADD COLUMN expires_at INTEGER;"
    "ALTER TABLE personal_api_keys ADD COLUMN rate_limit_per_minute INTEGER;"
    "ALTER TABLE personal_api_keys ADD COLUMN scopes_used TEXT;"
    "ALTER TABLE project_secret_api_keys ADD COLUMN expires_at INTEGER;"
    "ALTER TABLE project_secret_api_keys ADD COLUMN rate_limit_per_minute INTEGER;"
    "ALTER TABLE project_secret_api_keys ADD COLUMN scopes_used TEXT;"
    "DROP TRIGGER personal_api_keys_auth_update;"
    "DROP TRIGGER project_secret_api_keys_auth_update;"
    "CREATE TRIGGER personal_api_keys_auth_update AFTER UPDATE OF secure_value, scopes, "
    "  scoped_teams, scoped_organizations, user_id, expires_at, rate_limit_per_minute "
    "  ON personal_api_keys BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER project_secret_api_keys_auth_update AFTER UPDATE OF secure_value, scopes, "
    "  project_id, expires_at, rate_limit_per_minute ON project_secret_api_keys BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;",

    /* 7: the web console — sessions (only the sha256 of the cookie token),
     * one-time organization invitations (token hashed too), failed sign-ins
     * for the login rate limit, and a text column on kw_meta for the server
     * secret CSRF tokens are derived with. */
    "CREATE TABLE sessions ("
    "  token_hash TEXT PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  last_seen_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE TABLE invites ("
    "  id TEXT PRIMARY KEY,"
    "  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  target_email TEXT NOT NULL,"
    "  level INTEGER NOT NULL,"
    "  created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  accepted_at INTEGER);"
    "CREATE TABLE login_attempts ("
    "  key TEXT NOT NULL,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX login_attempts_key ON login_attempts(key, at);"
    "ALTER TABLE kw_meta ADD COLUMN text_value TEXT;",

    /* 8: roll with a grace period — the previous value of a
     * rolled key, accepted until expires_at.  The primary key is the unique
     * index on secure_value the verifier probes; (kind, key_id) finds a
     * key's rows.  Removing or changing a row bumps the auth generation (a
     * cached grace value must go), and deleting a key removes its previous
     * values whoever deletes it (API, CLI, user or project cascade).  An
     * INSERT needs no trigger: it lands in the roll's transaction, whose
     * UPDATE of the key's secure_value bumps the generation already. */
    "CREATE TABLE rolled_key_values ("
    "  secure_value TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  key_id TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE INDEX rolled_key_values_key ON rolled_key_values(kind, key_id);"
    "CREATE TRIGGER rolled_key_values_auth_update AFTER UPDATE ON rolled_key_values BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER rolled_key_values_auth_delete AFTER DELETE ON rolled_key_values BEGIN"
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation'; END;"
    "CREATE TRIGGER personal_api_keys_rolled_delete AFTER DELETE ON personal_api_keys BEGIN"
    "  DELETE FROM rolled_key_values WHERE kind = 'personal' AND key_id = OLD.id; END;"
    "CREATE TRIGGER project_secret_api_keys_rolled_delete AFTER DELETE ON project_secret_api_keys"
    "  BEGIN DELETE FROM rolled_key_values WHERE kind = 'secret' AND key_id = OLD.id; END;",
    /* 9: the change log — what each bump of a generation changed, so a
     * cache forgets that key, user or project instead of everything (an
     * unrelated revocation must not cost every other key its cached
     * answer).  Every trigger that bumps a generation is recreated to also
     * log one row numbered with the generation it produced: a stream's
     * rows are then gapless, so a reader can tell a complete read from a
     * pruned one.  Readers prune rows far behind the generation. */
    "CREATE TABLE kw_changes ("
    "  stream INTEGER NOT NULL,"
    "  generation INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  ref TEXT NOT NULL,"
    "  PRIMARY KEY (stream, generation));"
#define M9_AUTH(kind, ref)                                                                   \
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'auth_generation';"                  \
    "  INSERT INTO kw_changes(stream, generation, kind, ref) SELECT 1, value, " kind ", " ref \
    "  FROM kw_meta WHERE name = 'auth_generation'; END;"
#define M9_FLAGS(ref)                                                                             \
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'flags_generation';"                      \
    "  INSERT INTO kw_changes(stream, generation, kind, ref) SELECT 2, value, 'flags', " ref \
    "  FROM kw_meta WHERE name = 'flags_generation'; END;"
    "DROP TRIGGER personal_api_keys_auth_update;"
    "DROP TRIGGER personal_api_keys_auth_delete;"
    "DROP TRIGGER project_secret_api_keys_auth_update;"
    "DROP TRIGGER project_secret_api_keys_auth_delete;"
    "DROP TRIGGER users_auth_update;"
    "DROP TRIGGER users_auth_delete;"
    "DROP TRIGGER projects_auth_token;"
    "DROP TRIGGER projects_auth_delete;"
    "DROP TRIGGER rolled_key_values_auth_update;"
    "DROP TRIGGER rolled_key_values_auth_delete;"
    "DROP TRIGGER feature_flags_gen_insert;"
    "DROP TRIGGER feature_flags_gen_update;"
    "DROP TRIGGER feature_flags_gen_delete;"
    "CREATE TRIGGER personal_api_keys_auth_update AFTER UPDATE OF secure_value, scopes, "
    "  scoped_teams, scoped_organizations, user_id, expires_at, rate_limit_per_minute "
    "  ON personal_api_keys BEGIN" M9_AUTH("'personal'", "OLD.id")
    "CREATE TRIGGER personal_api_keys_auth_delete AFTER DELETE ON personal_api_keys BEGIN"
    M9_AUTH("'personal'", "OLD.id")
    "CREATE TRIGGER project_secret_api_keys_auth_update AFTER UPDATE OF secure_value, scopes, "
    "  project_id, expires_at, rate_limit_per_minute ON project_secret_api_keys BEGIN"
    M9_AUTH("'secret'", "OLD.id")
    "CREATE TRIGGER project_secret_api_keys_auth_delete AFTER DELETE ON project_secret_api_keys"
    "  BEGIN" M9_AUTH("'secret'", "OLD.id")
    "CREATE TRIGGER users_auth_update AFTER UPDATE OF is_active ON users BEGIN"
    M9_AUTH("'user'", "CAST(OLD.id AS TEXT)")
    "CREATE TRIGGER users_auth_delete AFTER DELETE ON users BEGIN"
    M9_AUTH("'user'", "CAST(OLD.id AS TEXT)")
    "CREATE TRIGGER projects_auth_token AFTER UPDATE OF api_token ON projects BEGIN"
    M9_AUTH("'project'", "CAST(OLD.id AS TEXT)")
    "CREATE TRIGGER projects_auth_delete AFTER DELETE ON projects BEGIN"
    M9_AUTH("'project'", "CAST(OLD.id AS TEXT)")
    "CREATE TRIGGER rolled_key_values_auth_update AFTER UPDATE ON rolled_key_values BEGIN"
    M9_AUTH("OLD.kind", "OLD.key_id")
    "CREATE TRIGGER rolled_key_values_auth_delete AFTER DELETE ON rolled_key_values BEGIN"
    M9_AUTH("OLD.kind", "OLD.key_id")
    "CREATE TRIGGER feature_flags_gen_insert AFTER INSERT ON feature_flags BEGIN"
    M9_FLAGS("CAST(NEW.project_id AS TEXT)")
    "CREATE TRIGGER feature_flags_gen_update AFTER UPDATE ON feature_flags BEGIN"
    M9_FLAGS("CAST(NEW.project_id AS TEXT)")
    "CREATE TRIGGER feature_flags_gen_delete AFTER DELETE ON feature_flags BEGIN"
    M9_FLAGS("CAST(OLD.project_id AS TEXT)"),
#undef M9_AUTH
#undef M9_FLAGS

    /* 10: when the "expiring soon" notice of a key with an expiry was last
     * sent (NULL: never), so a notifier warns once per key, not at every
     * pass.  Not an auth column: no trigger watches it. */
    "ALTER TABLE personal_api_keys ADD COLUMN expiry_notified_at INTEGER;"
    "ALTER TABLE project_secret_api_keys ADD COLUMN expiry_notified_at INTEGER;",

    /* 11: project ids are never reused.  A personal key's scoped_teams
     * names projects by id; if a deleted project's id came back for a new
     * project, a key scoped to the old one would silently reach the new
     * one.  SQLite's INTEGER PRIMARY KEY hands out max(id) + 1, which
     * reuses the id of a deleted newest project, so every deleted id is
     * kept here (the tombstone), the insert numbers past both tables
     * (sql.c), and a trigger refuses any insert of a tombstoned id (the
     * import included), whoever writes it. */
    "CREATE TABLE deleted_projects ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id TEXT NOT NULL,"
    "  deleted_at INTEGER NOT NULL);"
    "CREATE TRIGGER projects_tombstone AFTER DELETE ON projects BEGIN"
    "  INSERT OR IGNORE INTO deleted_projects(id, org_id, deleted_at)"
    "  VALUES (OLD.id, OLD.org_id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;"
    "CREATE TRIGGER projects_no_reuse BEFORE INSERT ON projects"
    "  WHEN EXISTS (SELECT 1 FROM deleted_projects WHERE id = NEW.id) BEGIN"
    "  SELECT RAISE(ABORT, 'this project id belonged to a deleted project'); END;",

    /* 12: what a project's browser SDK is told to do (its remote config,
     * GET /array/<token>/config): an admin's switches, PostHog's team
     * columns and defaults (network timing on, autocapture on, heatmaps
     * off). */
    "ALTER TABLE projects ADD COLUMN autocapture_opt_out INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE projects ADD COLUMN capture_performance_opt_in INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE projects ADD COLUMN heatmaps_opt_in INTEGER NOT NULL DEFAULT 0;",

    /* 13: a project's group types (PostHog's group analytics), learned from
     * captured events: index 0-4 in order of first sight, at most 5 (the
     * index's CHECK), unique by name and by index.  They are part of the
     * flag definitions (group_type_mapping), so every write bumps the flags
     * generation and logs the project, as a flag write does, and the flag
     * caches of every instance forget that project's set. */
    "CREATE TABLE group_type_mappings ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  group_type TEXT NOT NULL,"
    "  group_type_index INTEGER NOT NULL CHECK (group_type_index BETWEEN 0 AND 4),"
    "  name_singular TEXT,"
    "  name_plural TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (project_id, group_type),"
    "  UNIQUE (project_id, group_type_index));"
#define M13_FLAGS(ref)                                                                            \
    "  UPDATE kw_meta SET value = value + 1 WHERE name = 'flags_generation';"                      \
    "  INSERT INTO kw_changes(stream, generation, kind, ref) SELECT 2, value, 'flags', " ref \
    "  FROM kw_meta WHERE name = 'flags_generation'; END;"
    "CREATE TRIGGER group_type_mappings_gen_insert AFTER INSERT ON group_type_mappings BEGIN"
    M13_FLAGS("CAST(NEW.project_id AS TEXT)")
    "CREATE TRIGGER group_type_mappings_gen_update AFTER UPDATE ON group_type_mappings BEGIN"
    M13_FLAGS("CAST(NEW.project_id AS TEXT)")
    "CREATE TRIGGER group_type_mappings_gen_delete AFTER DELETE ON group_type_mappings BEGIN"
    M13_FLAGS("CAST(OLD.project_id AS TEXT)")
    /* The browser SDK settings (migration 12) are served from the same
     * cached set (the remote config): their writes are logged likewise. */
    "CREATE TRIGGER projects_sdk_settings_gen AFTER UPDATE OF autocapture_opt_out, "
    "  capture_performance_opt_in, heatmaps_opt_in ON projects BEGIN"
    M13_FLAGS("CAST(NEW.id AS TEXT)"),
#undef M13_FLAGS
    /* 14: signed webhooks of an organization and their outbox.  A webhook's
     * secret (whsec_…) is kept as given out: it is the HMAC key every
     * delivery is signed with, so it cannot be a one-way hash; it is shown
     * once, at creation, and never again.  An outbox row is one event for
     * one webhook, written in the transaction of the change it describes,
     * so a crash loses none and a rolled-back change sends none.  Its id is
     * the webhook-id header, the same on every attempt.  next_attempt_at is
     * NULL once the row is done (delivered, or given up after 24 h); a
     * sender claims a due row by moving it a lease ahead, so a sender that
     * dies mid-delivery leaves it due again when the lease ends. */
    "CREATE TABLE webhooks ("
    "  id TEXT PRIMARY KEY,"
    "  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  url TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  events TEXT NOT NULL DEFAULT '[]',"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  created_by INTEGER,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX webhooks_org ON webhooks(org_id, created_at);"
    "CREATE TABLE webhook_outbox ("
    "  id TEXT PRIMARY KEY,"
    "  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  event TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER,"
    "  last_attempt_at INTEGER,"
    "  delivered_at INTEGER,"
    "  last_status INTEGER,"
    "  last_latency_ms INTEGER,"
    "  last_error TEXT);"
    "CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_at) "
    "  WHERE next_attempt_at IS NOT NULL;"
    "CREATE INDEX webhook_outbox_hook ON webhook_outbox(webhook_id, created_at);",

    /* 15: empty.  The number was kept free for a change that did not come;
     * applied numbers are never reused, so it stays a no-op. */
    "SELECT 1;",

    /* 16: the directory generation — bumped, in the writing transaction, by
     * every write to what GET /api/users/@me answers: users, organizations,
     * memberships, projects, and a personal key's scoping or deletion.  The
     * @me answer cache of every instance keeps an answer only while this
     * value is the one it was built at. */
    "INSERT INTO kw_meta(name, value) VALUES ('directory_generation', 1);"
#define M16_BUMP " BEGIN UPDATE kw_meta SET value = value + 1 WHERE name = 'directory_generation'; END;"
#define M16_TABLE(t)                                                                               \
    "CREATE TRIGGER " t "_directory_insert AFTER INSERT ON " t M16_BUMP                            \
    "CREATE TRIGGER " t "_directory_update AFTER UPDATE ON " t M16_BUMP                            \
    "CREATE TRIGGER " t "_directory_delete AFTER DELETE ON " t M16_BUMP
    M16_TABLE("users")
    M16_TABLE("organizations")
    M16_TABLE("memberships")
    M16_TABLE("projects")
    "CREATE TRIGGER personal_api_keys_directory_update AFTER UPDATE OF scopes, scoped_teams, "
    "  scoped_organizations, user_id ON personal_api_keys" M16_BUMP
    "CREATE TRIGGER personal_api_keys_directory_delete AFTER DELETE ON personal_api_keys" M16_BUMP,
#undef M16_TABLE
#undef M16_BUMP

    /* 17: empty here.  PostgreSQL's 17 drops the events table's foreign
     * key, a cost SQLite's capture path never had; the number is kept so
     * both dialects count their migrations alike. */
    "SELECT 1;",

    /* 18: a webhook's health, so that one failing receiver costs the
     * senders one attempt per backoff step, not one per queued event.
     * failures counts consecutive failed attempts (0 after a delivery);
     * held_until is when any of its rows may next be attempted: a sender
     * sets it to its lease while an attempt is in flight (one row of a
     * webhook at a time, across instances) and to the webhook's next
     * retry after a failure.  NULL: not held. */
    "ALTER TABLE webhooks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN held_until INTEGER;",
};

const int kw_sqlite_migration_count =
    (int)(sizeof kw_sqlite_migrations / sizeof kw_sqlite_migrations[0]);
