/* endpoint.c — endpoints: named, parameterised, read-only queries over a
 * project's captured events (PostHog's /endpoints/ API).
 *
 * Create, update, delete and load follow lib/flags/flag.c and lib/keys/psk.c: the
 * request fields are read through one table (name, description, query,
 * variables), each write and its activity entry ("Endpoint" scope) share a
 * transaction, and a refusal is a kw_problem.  The query document itself is
 * validated by endpoint_query.c — against the variables the endpoint will
 * have after the change, so an update that drops a variable still in use
 * is refused.  Names are the URL: [a-z0-9_-]{1,64}, unique per project.
 * Deletes are hard (the name is free again at once). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/endpoint_query.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "store/txn.h"
#include "keyward/validate.h"

#define AUDIT_SCOPE "Endpoint"
#define DESCRIPTION_MAX_CHARS 1000
#define DOC_MAX_BYTES (64 * 1024)

static int check_name(const char *name, kw_problem *p)
{
    size_t n = strlen(name);
    if (n >= 1 && n <= KW_ENDPOINT_NAME_MAX && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n)
        return 0;
    kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "name",
                   "Endpoint names are 1 to 64 characters: lowercase letters, digits, '-' and '_'.");
    return 1;
}

/* Where each request field lands in a kw_endpoint. */
enum field_kind { F_NAME, F_TEXT, F_JSON };
static const struct {
    const char *field;
    enum field_kind kind;
    int required;           /* on create */
    size_t offset;          /* of the char * (F_TEXT / F_JSON) */
} FIELDS[] = {
    {"name", F_NAME, 1, 0},
    {"description", F_TEXT, 0, offsetof(kw_endpoint, description)},
    {"query", F_JSON, 1, offsetof(kw_endpoint, query)},
    {"variables", F_JSON, 0, offsetof(kw_endpoint, variables)},
};
#define N_FIELDS (sizeof FIELDS / sizeof FIELDS[0])

static char **slot(kw_endpoint *e, size_t i) { return (char **)((char *)e + FIELDS[i].offset); }

static json_t *as_json(const char *field, enum field_kind kind, const char *text)
{
    (void)field;
    if (!text) return json_null();
    if (kind == F_JSON) {
        json_t *v = json_loads(text, 0, NULL);
        return v ? v : json_null();
    }
    return json_string(text);
}

/* Reads the fields present in body into *e (changes noted in `changes`),
 * then validates the resulting query against the resulting variables. */
static int apply_fields(const json_t *body, int creating, kw_endpoint *e, json_t *changes, kw_problem *p)
{
    if (kw_v_object(body, p)) return 1;
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *f = FIELDS[i].field;
        json_t *v = json_object_get(body, f);
        char *text = NULL;
        if (!v) {
            if (creating && FIELDS[i].required) {
                kw_problem_set(p, KW_P_VALIDATION, "required", f, "This field is required.");
                return 1;
            }
            continue;
        }
        if (FIELDS[i].kind == F_JSON) {
            if (!json_is_object(v)) {
                kw_problem_set(p, KW_P_VALIDATION, "invalid_input", f, "%s must be an object.", f);
                return 1;
            }
            text = json_dumps(v, JSON_COMPACT);
            if (text && strlen(text) > DOC_MAX_BYTES) {
                free(text);
                kw_problem_set(p, KW_P_VALIDATION, "max_length", f, "%s is larger than 64 KiB.", f);
                return 1;
            }
        } else {
            const char *s;
            int name = FIELDS[i].kind == F_NAME;
            /* `f` is one of the table's literals, as kw_v_string wants. */
            if (kw_v_string(body, f, 1, name ? KW_ENDPOINT_NAME_MAX : DESCRIPTION_MAX_CHARS, !name, &s, p))
                return 1;
            if (name && check_name(s, p)) return 1;
            text = strdup(s);
        }
        if (!text) return kw_storage_problem(p, KW_ERR_NOMEM);
        const char *before = FIELDS[i].kind == F_NAME ? e->name : *slot(e, i);
        if (before && strcmp(before, text) == 0) {
            free(text);
            continue;
        }
        if (changes)
            json_array_append_new(changes, kw_audit_change(AUDIT_SCOPE, "changed", f,
                                                           as_json(f, FIELDS[i].kind, before),
                                                           as_json(f, FIELDS[i].kind, text)));
        if (FIELDS[i].kind == F_NAME) {
            snprintf(e->name, sizeof e->name, "%s", text);
            free(text);
        } else {
            free(*slot(e, i));
            *slot(e, i) = text;
        }
    }
    if (!e->description && !(e->description = strdup(""))) return kw_storage_problem(p, KW_ERR_NOMEM);
    if (!e->variables && !(e->variables = strdup("{}"))) return kw_storage_problem(p, KW_ERR_NOMEM);
    json_t *query = json_loads(e->query ? e->query : "null", 0, NULL);
    json_t *defs = json_loads(e->variables, 0, NULL);
    kw_eq_resolved r;
    int failed = kw_eq_check_variables(defs, p) || kw_eq_resolve(query, defs, NULL, kw_now(), &r, p);
    json_decref(query);
    json_decref(defs);
    return failed;
}

static int finish(const kw_call *c, int rc, const kw_endpoint *e, kw_problem *p)
{
    if (rc == KW_ERR_EXISTS) {
        kw_store_rollback(c->store);
        kw_problem_set(p, KW_P_VALIDATION, "unique", "name",
                       "An endpoint named '%s' already exists in this project.", e->name);
        return 1;
    }
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

static int audit(const kw_call *c, const kw_project *project, const kw_endpoint *e,
                 const char *activity, json_t *changes)
{
    char item[32];
    snprintf(item, sizeof item, "%lld", (long long)e->id);
    return kw_audit_record(c, project->id, project->org_id, activity, AUDIT_SCOPE, item, e->name,
                           changes);
}

int kw_endpoint_load(const kw_call *c, int64_t project_id, const char *name, kw_endpoint *out,
                     kw_problem *p)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(name);
    int rc = n && n <= KW_ENDPOINT_NAME_MAX ? kw_store_endpoint_get(c->store, project_id, name, out)
                                           : KW_ERR_NOTFOUND;
    return kw_problem_from_store(p, rc);
}

int kw_endpoint_create(const kw_call *c, const kw_project *project, const json_t *body,
                       kw_endpoint *out, kw_problem *p)
{
    memset(out, 0, sizeof *out);
    out->project_id = project->id;
    out->created_by = c->actor ? c->actor->user_id : 0;
    int rc = apply_fields(body, 1, out, NULL, p) ? 1 : kw_store_begin(c->store);
    if (rc == 1) goto err;
    if (rc) {
        kw_storage_problem(p, rc);
        goto err;
    }
    rc = kw_store_endpoint_insert(c->store, out);
    if (!rc) rc = audit(c, project, out, "created", NULL);
    if (finish(c, rc, out, p)) goto err;
    return 0;
err:
    kw_endpoint_clear(out);
    return 1;
}

int kw_endpoint_update(const kw_call *c, const kw_project *project, const char *name,
                       const json_t *body, kw_endpoint *out, kw_problem *p)
{
    if (kw_endpoint_load(c, project->id, name, out, p)) return 1;
    json_t *changes = json_array();
    if (!changes) {
        kw_endpoint_clear(out);
        return kw_storage_problem(p, KW_ERR_NOMEM);
    }
    int rc = apply_fields(body, 0, out, changes, p);
    if (rc || json_array_size(changes) == 0) {  /* refused, or nothing to write */
        json_decref(changes);
        if (rc) kw_endpoint_clear(out);
        return rc;
    }
    out->updated_at = kw_now();
    rc = kw_store_begin(c->store);
    if (rc) {
        json_decref(changes);
        kw_endpoint_clear(out);
        return kw_storage_problem(p, rc);
    }
    rc = kw_store_endpoint_update(c->store, out);
    if (!rc)
        rc = audit(c, project, out, "updated", changes);
    else
        json_decref(changes);
    if (finish(c, rc, out, p)) {
        kw_endpoint_clear(out);
        return 1;
    }
    return 0;
}

int kw_endpoint_delete(const kw_call *c, const kw_project *project, const char *name, kw_problem *p)
{
    kw_endpoint e;
    if (kw_endpoint_load(c, project->id, name, &e, p)) return 1;
    int rc = kw_store_begin(c->store);
    if (!rc) {
        rc = kw_store_endpoint_delete(c->store, project->id, e.id);
        if (!rc) rc = audit(c, project, &e, "deleted", NULL);
        rc = kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
    } else {
        rc = kw_storage_problem(p, rc);
    }
    kw_endpoint_clear(&e);
    return rc;
}

/* A run between its two halves: what the query needs, nothing borrowed
 * from the request (it may run on another thread once the request's first
 * pass has returned). */
struct kw_endpoint_job {
    kw_eq_resolved r;
    char name[KW_ENDPOINT_NAME_MAX + 1];
    json_t *kind;
};

int kw_endpoint_run_prepare(const kw_call *c, const kw_project *project, const char *name,
                            const json_t *values, kw_endpoint_job **out, kw_problem *p)
{
    *out = NULL;
    if (values && !json_is_object(values)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "variables",
                       "variables must be an object.");
        return 1;
    }
    kw_endpoint e;
    if (kw_endpoint_load(c, project->id, name, &e, p)) return 1;
    kw_endpoint_job *job = calloc(1, sizeof *job);
    json_t *query = json_loads(e.query, 0, NULL);
    json_t *defs = json_loads(e.variables, 0, NULL);
    json_t *empty = values ? NULL : json_object();
    int failed = !job ? kw_storage_problem(p, KW_ERR_NOMEM)
                      : kw_eq_resolve(query, defs, values ? values : empty, kw_now(), &job->r, p);
    if (!failed) {
        job->r.q.project_id = project->id;
        snprintf(job->name, sizeof job->name, "%s", e.name);
        job->kind = json_incref(json_object_get(query, "kind"));
        *out = job;
    } else {
        free(job);
    }
    json_decref(query);
    json_decref(defs);
    json_decref(empty);
    kw_endpoint_clear(&e);
    return failed;
}

int kw_endpoint_run_execute(kw_store *store, kw_endpoint_job *job, int64_t time_limit_ms,
                            json_t **result, kw_problem *p)
{
    *result = NULL;
    job->r.q.time_limit_ms = time_limit_ms;
    if (kw_eq_run(store, &job->r, result, p)) return 1;
    json_object_set_new(*result, "name", json_string(job->name));
    json_object_set(*result, "kind", job->kind ? job->kind : json_null());
    return 0;
}

void kw_endpoint_job_free(kw_endpoint_job *job)
{
    if (!job) return;
    json_decref(job->kind);
    free(job);
}
