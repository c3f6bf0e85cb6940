/* fuzz_body.c — request-body decoders against a real SQLite store:
 * kw_pkey_create, kw_pkey_update, kw_flag_create, kw_flag_update.
 *
 * Input: byte 0 picks the operation (bits 0-1), the actor (bit 2: a
 * signed-in session as the CLI builds it, or a narrowed personal key) and
 * the id to update (bits 3-4); the rest is parsed as JSON (any value, as a
 * body could be) and passed as the request body.
 * Invariants:
 *   - a refusal is a 4xx problem with detail text, and changes nothing:
 *     same key / flag count, the target row byte-for-byte the same;
 *   - a success round-trips: the stored row equals what the call returned,
 *     a created key's value is a valid keyward phx_ key whose sha256 is the
 *     stored secure_value and whose mask is stored;
 *   - stored JSON columns parse back as JSON.
 * Between inputs the store is put back as it was (created rows removed,
 * the targets restored), so every input runs against the same state. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyward/keyward.h"
#include "keyward/service.h"

static kw_store *store;
static kw_user user;
static kw_project project;
static kw_principal session, narrowed;
static kw_pkey target_key, other_key;   /* update targets, as created */
static kw_flag target_flag, other_flag;

static int count_cb(void *ctx, const void *row)
{
    (void)row;
    (*(int64_t *)ctx)++;
    return 0;
}
static int pkey_count_cb(void *ctx, const kw_pkey *k) { return count_cb(ctx, k); }
static int flag_count_cb(void *ctx, const kw_flag *f) { return count_cb(ctx, f); }

static int64_t pkey_count(void)
{
    int64_t n = 0;
    FZ_CHECK(kw_store_pkey_list(store, user.id, pkey_count_cb, &n) == KW_OK, "pkey list");
    return n;
}

static int64_t flag_count(void)
{
    int64_t n = 0;
    FZ_CHECK(kw_store_flag_list(store, project.id, KW_FLAG_BY_KEY, 1, flag_count_cb, &n) == KW_OK,
             "flag list");
    return n;
}

static void check_json_column(const char *text, const char *what)
{
    if (!text || !*text) return;
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    FZ_CHECK(j != NULL, "%s column is not JSON: %s", what, text);
    json_decref(j);
}

static void same_pkey(const kw_pkey *a, const kw_pkey *b, const char *when)
{
    FZ_CHECK(strcmp(a->id, b->id) == 0, "%s: id %s vs %s", when, a->id, b->id);
    FZ_CHECK(a->user_id == b->user_id, "%s: user_id", when);
    FZ_CHECK(strcmp(a->label, b->label) == 0, "%s: label '%s' vs '%s'", when, a->label, b->label);
    FZ_CHECK(strcmp(a->secure_value, b->secure_value) == 0, "%s: secure_value", when);
    FZ_CHECK(strcmp(a->mask_value, b->mask_value) == 0, "%s: mask", when);
    FZ_CHECK(strcmp(a->scopes, b->scopes) == 0, "%s: scopes %s vs %s", when, a->scopes, b->scopes);
    FZ_CHECK(strcmp(a->scoped_teams, b->scoped_teams) == 0, "%s: teams %s vs %s", when,
             a->scoped_teams, b->scoped_teams);
    FZ_CHECK(strcmp(a->scoped_orgs, b->scoped_orgs) == 0, "%s: orgs %s vs %s", when,
             a->scoped_orgs, b->scoped_orgs);
}

static void same_flag(const kw_flag *a, const kw_flag *b, const char *when)
{
    FZ_CHECK(a->id == b->id && a->project_id == b->project_id, "%s: id", when);
    FZ_CHECK(strcmp(a->key, b->key) == 0, "%s: key '%s' vs '%s'", when, a->key, b->key);
    FZ_CHECK(strcmp(a->name, b->name) == 0, "%s: name '%s' vs '%s'", when, a->name, b->name);
    FZ_CHECK(a->filters && b->filters && strcmp(a->filters, b->filters) == 0, "%s: filters %s vs %s",
             when, a->filters ? a->filters : "(null)", b->filters ? b->filters : "(null)");
    FZ_CHECK(a->active == b->active && a->deleted == b->deleted &&
                 a->ensure_experience_continuity == b->ensure_experience_continuity,
             "%s: booleans", when);
}

static void check_problem(const kw_problem *p, const char *op)
{
    FZ_CHECK(p->status >= 400 && p->status < 500, "%s: refusal with status %d (%s)", op, p->status,
             p->detail);
    FZ_CHECK(p->type && p->code && p->detail[0], "%s: incomplete problem", op);
}

static void restore_pkey(const kw_pkey *saved)
{
    FZ_CHECK(kw_store_pkey_update(store, saved) == KW_OK, "restore key");
}

static void restore_flag(const kw_flag *saved)
{
    kw_flag copy = *saved;
    copy.filters = strdup(saved->filters);
    FZ_CHECK(copy.filters != NULL, "oom");
    FZ_CHECK(kw_store_flag_update(store, &copy) == KW_OK, "restore flag");
    kw_flag_clear(&copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    store = kw_fz_temp_store();
    kw_problem p;
    char value[KW_KEY_LEN + 1];
    FZ_CHECK(kw_bootstrap(store, "fuzz@example.com", "Fuzz org", "Fuzz project", &user, &project,
                          value, &p) == 0, "bootstrap: %s", p.detail);
    /* A second project in the same organization, for scoped_teams. */
    kw_project second;
    memset(&second, 0, sizeof second);
    snprintf(second.name, sizeof second.name, "Second");
    strcpy(second.org_id, project.org_id);
    FZ_CHECK(kw_key_generate(KW_KEY_PROJECT, second.api_token) == KW_OK, "token");
    FZ_CHECK(kw_store_project_create(store, &second) == KW_OK, "second project");

    /* The signed-in session, exactly as kw_cli_act_as builds it. */
    memset(&session, 0, sizeof session);
    session.session = 1;
    session.user_id = user.id;
    session.scopes.wildcard = 1;
    session.n_scoped_teams = session.n_scoped_orgs = -1;

    kw_call c = {.store = store, .actor = &session, .ip = "127.0.0.1"};
    json_t *body = json_pack("{s:s, s:[s,s,s], s:[I]}", "label", "target", "scopes",
                             "feature_flag:write", "personal_api_key:write", "project:read",
                             "scoped_teams", (json_int_t)project.id);
    FZ_CHECK(kw_pkey_create(&c, body, &target_key, value, &p) == 0, "target key: %s", p.detail);
    json_decref(body);
    body = json_pack("{s:s, s:[s]}", "label", "other", "scopes", "*");
    FZ_CHECK(kw_pkey_create(&c, body, &other_key, value, &p) == 0, "other key: %s", p.detail);
    json_decref(body);

    /* A personal key's principal, narrowed to one project, acting as the
     * target key (so "@current" is that key). */
    memset(&narrowed, 0, sizeof narrowed);
    narrowed.kind = KW_KEY_PERSONAL;
    narrowed.user_id = user.id;
    strcpy(narrowed.key_id, target_key.id);
    kw_principal_load_scopes(&narrowed, target_key.scopes, target_key.scoped_teams,
                             target_key.scoped_orgs);

    body = json_pack("{s:s, s:s, s:{s:[{s:[], s:i}]}}", "key", "target-flag", "name", "Target",
                     "filters", "groups", "properties", "rollout_percentage", 50);
    FZ_CHECK(kw_flag_create(&c, project.id, body, &target_flag, &p) == 0, "flag: %s", p.detail);
    json_decref(body);
    body = json_pack("{s:s}", "key", "other-flag");
    FZ_CHECK(kw_flag_create(&c, project.id, body, &other_flag, &p) == 0, "flag: %s", p.detail);
    json_decref(body);
    return 0;
}

static void fuzz_pkey_create(const kw_call *c, const json_t *body)
{
    int64_t before = pkey_count();
    kw_pkey out;
    kw_problem p;
    char value[KW_KEY_LEN + 1];
    memset(&p, 0, sizeof p);
    if (kw_pkey_create(c, body, &out, value, &p)) {
        check_problem(&p, "pkey_create");
        FZ_CHECK(pkey_count() == before, "refused create changed the key count");
        return;
    }
    FZ_CHECK(pkey_count() == before + 1, "create did not add exactly one key");
    kw_key_info info;
    FZ_CHECK(kw_key_classify(value, strlen(value), &info) == KW_FORMAT_KEYWARD &&
                 info.kind == KW_KEY_PERSONAL, "created value %s", value);
    char hash[KW_HASH_LEN + 1], mask[KW_MASK_MAX];
    kw_key_hash(value, KW_KEY_LEN, hash);
    kw_key_mask(value, KW_KEY_LEN, mask);
    FZ_CHECK(strcmp(hash, out.secure_value) == 0 && strcmp(mask, out.mask_value) == 0, "hash/mask");
    FZ_CHECK(out.scopes[0] != '\0', "created key without scopes");
    kw_pkey stored;
    FZ_CHECK(kw_store_pkey_get(store, user.id, out.id, &stored) == KW_OK, "created key not stored");
    same_pkey(&stored, &out, "create round-trip");
    check_json_column(stored.scopes, "scopes");
    check_json_column(stored.scoped_teams, "scoped_teams");
    check_json_column(stored.scoped_orgs, "scoped_orgs");
    FZ_CHECK(kw_store_pkey_delete(store, user.id, out.id) == KW_OK, "cleanup");
}

static void fuzz_pkey_update(const kw_call *c, const char *id, const kw_pkey *saved,
                             const json_t *body)
{
    int64_t before = pkey_count();
    kw_pkey out;
    kw_problem p;
    memset(&p, 0, sizeof p);
    int rc = kw_pkey_update(c, id, body, &out, &p);
    kw_pkey stored;
    FZ_CHECK(kw_store_pkey_get(store, user.id, saved->id, &stored) == KW_OK, "target vanished");
    FZ_CHECK(pkey_count() == before, "update changed the key count");
    if (rc) {
        check_problem(&p, "pkey_update");
        same_pkey(&stored, saved, "refused update");
        return;
    }
    same_pkey(&stored, &out, "update round-trip");
    check_json_column(stored.scopes, "scopes");
    check_json_column(stored.scoped_teams, "scoped_teams");
    check_json_column(stored.scoped_orgs, "scoped_orgs");
    restore_pkey(saved);
}

static void fuzz_flag_create(const kw_call *c, const json_t *body)
{
    int64_t before = flag_count();
    kw_flag out;
    kw_problem p;
    memset(&p, 0, sizeof p);
    if (kw_flag_create(c, project.id, body, &out, &p)) {
        check_problem(&p, "flag_create");
        FZ_CHECK(flag_count() == before, "refused create changed the flag count");
        return;
    }
    FZ_CHECK(flag_count() == before + 1, "create did not add exactly one flag");
    FZ_CHECK(!out.deleted, "created a deleted flag");
    kw_flag stored;
    FZ_CHECK(kw_store_flag_get(store, project.id, out.id, &stored) == KW_OK, "flag not stored");
    same_flag(&stored, &out, "create round-trip");
    check_json_column(stored.filters, "filters");
    kw_flag_clear(&stored);
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM feature_flags WHERE id = %lld", (long long)out.id);
    kw_fz_sql(sql);
    kw_flag_clear(&out);
}

static void fuzz_flag_update(const kw_call *c, const char *id, const kw_flag *saved,
                             const json_t *body)
{
    int64_t before = flag_count();
    kw_flag out;
    kw_problem p;
    memset(&p, 0, sizeof p);
    int rc = kw_flag_update(c, project.id, id, body, &out, &p);
    kw_flag stored;
    FZ_CHECK(kw_store_flag_get(store, project.id, saved->id, &stored) == KW_OK, "flag vanished");
    FZ_CHECK(flag_count() == before, "update changed the flag count");
    if (rc) {
        check_problem(&p, "flag_update");
        same_flag(&stored, saved, "refused update");
    } else {
        same_flag(&stored, &out, "update round-trip");
        check_json_column(stored.filters, "filters");
        kw_flag_clear(&out);
        restore_flag(saved);
    }
    kw_flag_clear(&stored);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long runs;
    if (size < 1) return 0;
    unsigned sel = data[0];
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (!body) return 0;
    const kw_principal *actor = (sel & 4) ? &narrowed : &session;
    kw_call c = {.store = store, .actor = actor, .ip = "127.0.0.1"};
    int which = (sel >> 3) & 3;  /* 0,1: target; 2: other; 3: "@current" / unknown */
    switch (sel & 3) {
    case 0:
        fuzz_pkey_create(&c, body);
        break;
    case 1:
        if (which == 2)
            fuzz_pkey_update(&c, other_key.id, &other_key, body);
        else
            fuzz_pkey_update(&c, which == 3 && actor == &narrowed ? "@current" : target_key.id,
                             &target_key, body);
        break;
    case 2:
        fuzz_flag_create(&c, body);
        break;
    case 3: {
        char id[32];
        const kw_flag *saved = which == 2 ? &other_flag : &target_flag;
        snprintf(id, sizeof id, "%lld", (long long)saved->id);
        fuzz_flag_update(&c, id, saved, body);
        break;
    }
    }
    json_decref(body);
    if (++runs % 256 == 0) kw_fz_sql("DELETE FROM activity_log");
    return 0;
}
