/* import.c — the PostHog import (see import.h, docs/import.md).
 *
 * One pass per section, in dependency order (users, organizations,
 * memberships, projects with their legacy secure keys, personal keys),
 * inside one transaction.
 *
 * An export is somebody else's file, so it is never trusted to graft onto
 * what the installation already has: a user, organization or project that
 * existed before the import (matched by id, email, name or phc_ token)
 * stops the import with an error naming the row, and keys and memberships
 * attach only to users, organizations and projects this export created.
 * Otherwise an export could plant a `*` key that authenticates as the
 * installation's first owner.  With KW_IMPORT_MERGE an existing row is
 * accepted when every identifying field the export gives matches it
 * exactly; that is how a newer export of the same installation is
 * re-imported (rows already present are skipped and counted).  A row that
 * fails either rule stops the import and nothing is written. */
#include "keyward/import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/validate.h"

static const char *const NAMES[KW_IMPORT_KINDS] = {
    "users", "organizations", "memberships", "projects", "personal_api_keys", "project_secret_keys"};

const char *kw_import_kind_name(enum kw_import_kind kind) { return NAMES[kind]; }

/* Ids of the users (int64) or organizations (text) this import may
 * attach rows to: created by it, or merged with an exact match.  Sorted
 * once per section, then searched, so a large export stays linear-log. */
typedef struct id_set {
    void *items;
    size_t count, cap, size;
    int (*cmp)(const void *, const void *);
} id_set;

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_org_id(const void *a, const void *b) { return strcmp(a, b); }

static int set_add(id_set *set, const void *item)
{
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        void *grown = realloc(set->items, cap * set->size);
        if (!grown) return KW_ERR_NOMEM;
        set->items = grown;
        set->cap = cap;
    }
    memcpy((char *)set->items + set->count * set->size, item, set->size);
    set->count++;
    return KW_OK;
}

static void set_seal(id_set *set)
{
    if (set->count) qsort(set->items, set->count, set->size, set->cmp);
}

static int set_has(const id_set *set, const void *item)
{
    return set->count && bsearch(item, set->items, set->count, set->size, set->cmp) != NULL;
}

struct ctx {
    kw_store *store;
    kw_import_counts *counts;
    kw_problem *p;
    const char *section;
    size_t row;
    int merge;
    id_set users, orgs;
};

static int fail(struct ctx *c, const char *field, const char *what)
{
    kw_problem_set(c->p, KW_P_VALIDATION, "invalid_input", NULL, "%s[%zu]%s%s: %s", c->section,
                   c->row, field ? "." : "", field ? field : "", what);
    return 1;
}

static int storage(struct ctx *c, int rc)
{
    kw_problem_from_store(c->p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc);
    return 1;
}

static int get_int(struct ctx *c, const json_t *row, const char *f, int required, int64_t *out)
{
    json_t *v = json_object_get(row, f);
    *out = 0;
    if (!v || json_is_null(v)) return required ? fail(c, f, "required") : 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0) return fail(c, f, "a positive integer is required");
    *out = json_integer_value(v);
    return 0;
}

static int get_str(struct ctx *c, const json_t *row, const char *f, int required, size_t max,
                   char *out)
{
    json_t *v = json_object_get(row, f);
    out[0] = '\0';
    if (!v || json_is_null(v)) return required ? fail(c, f, "required") : 0;
    if (!json_is_string(v) || json_string_length(v) > max) return fail(c, f, "a string that fits is required");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_time(struct ctx *c, const json_t *row, const char *f, kw_time *out)
{
    json_t *v = json_object_get(row, f);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || kw_time_parse(json_string_value(v), out)) return fail(c, f, "an ISO-8601 time is required");
    return 0;
}

/* A JSON list column: null → "" (SQL NULL); elements must be strings
 * (`ints` 0) or integers (`ints` 1). */
static int get_list(struct ctx *c, const json_t *row, const char *f, int ints, char *out, size_t size)
{
    json_t *v = json_object_get(row, f);
    out[0] = '\0';
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return fail(c, f, "a list or null is required");
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
        if (ints ? !json_is_integer(item) : !json_is_string(item)) return fail(c, f, "bad element");
    char *text = json_dumps(v, JSON_COMPACT);
    if (!text || strlen(text) >= size) {
        free(text);
        return fail(c, f, "too long");
    }
    strcpy(out, text);
    free(text);
    return 0;
}

/* A row that names something the installation already had. */
static int existed(struct ctx *c, const char *field, const char *what)
{
    char text[160];
    snprintf(text, sizeof text, "%s existed before this import (use --merge to match it)", what);
    return fail(c, field, text);
}

static void count(struct ctx *c, enum kw_import_kind k, int rc)
{
    if (rc == KW_ERR_EXISTS)
        c->counts->skipped[k]++;
    else
        c->counts->imported[k]++;
}

static const json_t *section(struct ctx *c, const json_t *doc, const char *name, int *bad)
{
    const json_t *list = json_object_get(doc, name);
    c->section = name;
    c->row = 0;
    *bad = list && !json_is_array(list) && !json_is_null(list);
    if (*bad) kw_problem_set(c->p, KW_P_VALIDATION, "invalid_input", NULL, "%s: a list is required", name);
    return json_is_array(list) ? list : NULL;
}

static int import_user(struct ctx *c, const json_t *row)
{
    kw_user u, have;
    memset(&u, 0, sizeof u);
    json_t *active = json_object_get(row, "is_active");
    if (get_int(c, row, "id", 1, &u.id) || get_str(c, row, "email", 1, KW_EMAIL_MAX, u.email) ||
        get_str(c, row, "uuid", 0, KW_ID_LEN, u.uuid) ||
        get_str(c, row, "first_name", 0, KW_NAME_MAX, u.first_name) ||
        get_time(c, row, "date_joined", &u.created_at))
        return 1;
    if (!u.created_at && get_time(c, row, "created_at", &u.created_at)) return 1;
    if (!u.created_at) u.created_at = kw_now();
    if (!u.uuid[0] && kw_uuid_v4(u.uuid)) return storage(c, KW_ERR_CRYPTO);
    u.is_active = !json_is_false(active);
    int uuid_given = json_is_string(json_object_get(row, "uuid"));
    int rc = kw_store_user_get(c->store, u.id, &have);
    if (!rc) {
        if (strcmp(have.email, u.email) != 0) return fail(c, "id", "already belongs to another email");
        if (!c->merge) return existed(c, "id", "this user");
        if (uuid_given && strcmp(have.uuid, u.uuid) != 0)
            return fail(c, "uuid", "does not match the existing user's");
        rc = KW_ERR_EXISTS;
    } else {
        if (rc != KW_ERR_NOTFOUND) return storage(c, rc);
        rc = kw_store_user_by_email(c->store, u.email, &have);
        if (!rc) return fail(c, "email", "already belongs to another user id");
        if (rc != KW_ERR_NOTFOUND) return storage(c, rc);
        rc = kw_store_import_user(c->store, &u);
        if (rc) return storage(c, rc == KW_ERR_EXISTS ? KW_ERR_DB : rc);
    }
    if (set_add(&c->users, &u.id)) return storage(c, KW_ERR_NOMEM);
    count(c, KW_IMPORT_USERS, rc);
    return 0;
}

static int import_org(struct ctx *c, const json_t *row)
{
    kw_org o, have;
    memset(&o, 0, sizeof o);
    if (get_str(c, row, "id", 1, KW_ID_LEN, o.id) || get_str(c, row, "name", 1, KW_NAME_MAX, o.name) ||
        get_time(c, row, "created_at", &o.created_at))
        return 1;
    if (!o.created_at) o.created_at = kw_now();
    int rc = kw_store_org_get(c->store, o.id, &have);
    if (!rc) {
        if (!c->merge) return existed(c, "id", "this organization");
        if (strcmp(have.name, o.name) != 0)
            return fail(c, "name", "does not match the existing organization's");
        rc = KW_ERR_EXISTS;
    } else if (rc == KW_ERR_NOTFOUND) {
        rc = kw_store_import_org(c->store, &o);
        if (rc) return storage(c, rc == KW_ERR_EXISTS ? KW_ERR_DB : rc);
    } else {
        return storage(c, rc);
    }
    if (set_add(&c->orgs, o.id)) return storage(c, KW_ERR_NOMEM);
    count(c, KW_IMPORT_ORGS, rc);
    return 0;
}

static int import_membership(struct ctx *c, const json_t *row)
{
    int64_t user_id, level = KW_LEVEL_MEMBER;
    char org[KW_ID_LEN + 1];
    int have;
    if (get_int(c, row, "user_id", 1, &user_id) ||
        get_str(c, row, "organization_id", 1, KW_ID_LEN, org) || get_int(c, row, "level", 0, &level))
        return 1;
    if (!level) level = KW_LEVEL_MEMBER;
    if (level != KW_LEVEL_MEMBER && level != KW_LEVEL_ADMIN && level != KW_LEVEL_OWNER)
        return fail(c, "level", "one of 1, 8, 15 is required");
    if (!set_has(&c->users, &user_id))
        return fail(c, "user_id", "not a user of this export (memberships attach only to them)");
    if (!set_has(&c->orgs, org))
        return fail(c, "organization_id",
                    "not an organization of this export (memberships attach only to them)");
    int rc = kw_store_membership_level(c->store, user_id, org, &have);
    if (!rc) {
        count(c, KW_IMPORT_MEMBERSHIPS, KW_ERR_EXISTS);
        return 0;
    }
    if (rc != KW_ERR_NOTFOUND) return storage(c, rc);
    rc = kw_store_membership_set(c->store, user_id, org, (int)level);
    if (rc) return rc == KW_ERR_EXISTS || rc == KW_ERR_DB ? fail(c, NULL, "unknown user or organization")
                                                          : storage(c, rc);
    count(c, KW_IMPORT_MEMBERSHIPS, KW_OK);
    return 0;
}

/* team.secret_api_token → a phs_ key with feature_flag:read, hashed. */
static int import_secret(struct ctx *c, const kw_project *project, const char *token)
{
    size_t len = strlen(token);
    static _Thread_local kw_psk k, have;
    memset(&k, 0, sizeof k);
    if (kw_key_kind_of(token, len) != KW_KEY_SECRET || len > KW_KEY_MAX_LEN)
        return fail(c, "secret_api_token", "a phs_ token is required");
    if (kw_key_hash(token, len, k.secure_value)) return storage(c, KW_ERR_CRYPTO);
    int rc = kw_store_psk_by_hash(c->store, k.secure_value, &have);
    if (!rc) {
        count(c, KW_IMPORT_SECRET_KEYS, KW_ERR_EXISTS);
        return 0;
    }
    if (rc != KW_ERR_NOTFOUND) return storage(c, rc);
    if (kw_uuid_v4(k.id)) return storage(c, KW_ERR_CRYPTO);
    k.project_id = project->id;
    snprintf(k.label, sizeof k.label, "%s", KW_IMPORT_SECRET_LABEL);
    kw_key_mask(token, len, k.mask_value);
    snprintf(k.scopes, sizeof k.scopes, "[\"feature_flag:read\"]");
    k.created_at = project->created_at;
    rc = kw_store_psk_insert(c->store, &k, KW_MAX_SECRET_KEYS);
    if (rc == KW_ERR_LIMIT) return fail(c, "secret_api_token", "the project has too many secret keys");
    if (rc && rc != KW_ERR_EXISTS) return storage(c, rc);
    count(c, KW_IMPORT_SECRET_KEYS, rc);
    return 0;
}

static int import_project(struct ctx *c, const json_t *row)
{
    kw_project p, have;
    char secret[KW_KEY_MAX_LEN + 2];
    memset(&p, 0, sizeof p);
    if (get_int(c, row, "id", 1, &p.id) || get_str(c, row, "organization_id", 1, KW_ID_LEN, p.org_id) ||
        get_str(c, row, "name", 1, KW_NAME_MAX, p.name) ||
        get_str(c, row, "api_token", 1, KW_KEY_MAX_LEN, p.api_token) ||
        get_str(c, row, "uuid", 0, KW_ID_LEN, p.uuid) ||
        get_str(c, row, "secret_api_token", 0, KW_KEY_MAX_LEN + 1, secret) ||
        get_time(c, row, "created_at", &p.created_at))
        return 1;
    if (!p.created_at) p.created_at = kw_now();
    if (!p.uuid[0] && kw_uuid_v4(p.uuid)) return storage(c, KW_ERR_CRYPTO);
    if (!set_has(&c->orgs, p.org_id))
        return fail(c, "organization_id",
                    "not an organization of this export (projects attach only to them)");
    int uuid_given = json_is_string(json_object_get(row, "uuid"));
    int rc = kw_store_project_get(c->store, p.id, &have);
    if (!rc) {
        if (!c->merge) return existed(c, "id", "this project");
        if (strcmp(have.api_token, p.api_token) != 0 || strcmp(have.name, p.name) != 0 ||
            strcmp(have.org_id, p.org_id) != 0 || (uuid_given && strcmp(have.uuid, p.uuid) != 0))
            return fail(c, "id", "does not match the existing project exactly");
        rc = KW_ERR_EXISTS;
    } else if (rc == KW_ERR_NOTFOUND) {
        if (kw_store_project_by_token(c->store, p.api_token, &have) == KW_OK)
            return fail(c, "api_token", "already belongs to another project id");
        rc = kw_store_import_project(c->store, &p);
        if (rc) return storage(c, rc == KW_ERR_EXISTS ? KW_ERR_DB : rc);
    } else {
        return storage(c, rc);
    }
    count(c, KW_IMPORT_PROJECTS, rc);
    return secret[0] ? import_secret(c, &p, secret) : 0;
}

static int import_pkey(struct ctx *c, const json_t *row)
{
    static _Thread_local kw_pkey k, have;
    char value[KW_KEY_MAX_LEN + 2];
    memset(&k, 0, sizeof k);
    if (get_str(c, row, "id", 1, KW_ID_LEN, k.id) || get_int(c, row, "user_id", 1, &k.user_id) ||
        get_str(c, row, "label", 1, KW_LABEL_MAX, k.label) ||
        get_str(c, row, "secure_value", 0, KW_SECURE_MAX, k.secure_value) ||
        get_str(c, row, "value", 0, KW_KEY_MAX_LEN + 1, value) ||
        get_str(c, row, "mask_value", 0, KW_MASK_MAX - 1, k.mask_value) ||
        get_list(c, row, "scopes", 0, k.scopes, sizeof k.scopes) ||
        get_list(c, row, "scoped_teams", 1, k.scoped_teams, sizeof k.scoped_teams) ||
        get_list(c, row, "scoped_organizations", 0, k.scoped_orgs, sizeof k.scoped_orgs) ||
        get_time(c, row, "created_at", &k.created_at) ||
        get_time(c, row, "last_used_at", &k.last_used_at) ||
        get_time(c, row, "last_rolled_at", &k.last_rolled_at))
        return 1;
    if (kw_v_utf8_length(k.label) > KW_LABEL_MAX_CHARS) return fail(c, "label", "at most 40 characters");
    /* Very old PostHog rows kept the plaintext in `value`: hash it now. */
    if (!k.secure_value[0] && value[0]) {
        if (kw_key_hash(value, strlen(value), k.secure_value)) return storage(c, KW_ERR_CRYPTO);
        if (!k.mask_value[0]) kw_key_mask(value, strlen(value), k.mask_value);
    }
    memset(value, 0, sizeof value);
    if (strncmp(k.secure_value, "sha256$", 7) != 0 && strncmp(k.secure_value, "pbkdf2_sha256$", 14) != 0)
        return fail(c, "secure_value", "a sha256$… or pbkdf2_sha256$… hash is required");
    if (!k.mask_value[0]) snprintf(k.mask_value, sizeof k.mask_value, "********");
    if (!k.created_at) k.created_at = kw_now();
    if (!set_has(&c->users, &k.user_id))
        return fail(c, "user_id", "not a user of this export (keys attach only to them)");
    int rc = kw_store_pkey_by_hash(c->store, k.secure_value, &have);
    if (rc == KW_ERR_NOTFOUND) rc = kw_store_import_pkey(c->store, &k);
    else if (!rc) rc = KW_ERR_EXISTS;
    if (rc && rc != KW_ERR_EXISTS) return storage(c, rc);
    count(c, KW_IMPORT_PERSONAL_KEYS, rc);
    return 0;
}

int kw_import_posthog(kw_store *store, const json_t *doc, unsigned flags, kw_import_counts *counts,
                      kw_problem *p)
{
    static const struct {
        const char *name;
        int (*row)(struct ctx *, const json_t *);
    } SECTIONS[] = {{"users", import_user},           {"organizations", import_org},
                    {"memberships", import_membership}, {"projects", import_project},
                    {"personal_api_keys", import_pkey}};
    memset(counts, 0, sizeof *counts);
    if (!json_is_object(doc)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", NULL, "The export must be a JSON object.");
        return 1;
    }
    struct ctx c = {store, counts, p, NULL, 0, !!(flags & KW_IMPORT_MERGE),
                    {NULL, 0, 0, sizeof(int64_t), cmp_int64},
                    {NULL, 0, 0, KW_ID_LEN + 1, cmp_org_id}};
    int rc = kw_store_begin(store);
    if (rc) return kw_problem_from_store(p, rc);
    int failed = 0;
    for (size_t s = 0; !failed && s < sizeof SECTIONS / sizeof SECTIONS[0]; s++) {
        const json_t *list = section(&c, doc, SECTIONS[s].name, &failed);
        const json_t *row;
        json_array_foreach(list, c.row, row) {
            if (!json_is_object(row)) failed = fail(&c, NULL, "an object is required");
            if (failed || (failed = SECTIONS[s].row(&c, row))) break;
        }
        set_seal(&c.users);
        set_seal(&c.orgs);
    }
    free(c.users.items);
    free(c.orgs.items);
    if (!failed && (rc = kw_store_import_done(store))) failed = storage(&c, rc);
    if (!failed && (rc = kw_store_commit(store))) failed = storage(&c, rc);
    if (failed) {
        kw_store_rollback(store);
        memset(counts, 0, sizeof *counts);
    }
    return failed;
}
