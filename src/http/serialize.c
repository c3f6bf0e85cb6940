/* serialize.c — keyward records as PostHog's JSON shapes.
 * Field names and order follow PostHog's serializers so clients written
 * for PostHog read them unchanged.  A key's `value` is null except in the
 * create and roll responses: the caller passes it only there. */
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

json_t *kw_json_time(kw_time t)
{
    if (!t) return json_null();
    char text[KW_TIME_TEXT];
    kw_time_format(t, text);
    return json_string(text);
}

json_t *kw_json_user_basic(const kw_user *u)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:b}", "id", (json_int_t)u->id, "uuid", u->uuid,
                     "distinct_id", u->uuid, "first_name", u->first_name, "last_name", "", "email",
                     u->email, "is_email_verified", 0);
}

json_t *kw_json_user_by_id(kw_store *store, int64_t user_id)
{
    kw_user u;
    if (!user_id || kw_store_user_get(store, user_id, &u)) return json_null();
    return kw_json_user_basic(&u);
}

json_t *kw_json_project(const kw_project *p, const kw_org *org)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:I, s:s?}", "id", (json_int_t)p->id, "uuid",
                     p->uuid, "organization", p->org_id, "api_token", p->api_token, "name", p->name,
                     "created_at", kw_json_time(p->created_at), "project_id", (json_int_t)p->id,
                     "organization_name", org ? org->name : NULL);
}

static json_t *list_or_empty(const char *text)
{
    json_t *v = text[0] ? json_loads(text, 0, NULL) : NULL;
    return v ? v : json_array();
}

/* When the key's previous value stops working (after a roll with a grace
 * period both values work until then), or null.  A listing read it with
 * the row (joined); a single answer reads it.  A failed read shows null:
 * the listing is advisory. */
static json_t *previous_expiry(kw_store *store, kw_key_kind kind, const char *id, int joined,
                               kw_time joined_until)
{
    kw_time now = kw_now(), until = 0;
    if (joined)
        until = joined_until > now ? joined_until : 0;
    else if (kw_store_rolled_expiry(store, kind, id, now, &until))
        until = 0;
    return kw_json_time(until);
}

json_t *kw_json_pkey(kw_store *store, const kw_pkey *k, const char *value)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "label", json_string(k->label));
    json_object_set_new(o, "value", value ? json_string(value) : json_null());
    json_object_set_new(o, "mask_value", json_string(k->mask_value));
    json_object_set_new(o, "created_at", kw_json_time(k->created_at));
    json_object_set_new(o, "last_used_at", kw_json_time(k->last_used_at));
    json_object_set_new(o, "user_id", json_integer(k->user_id));
    json_object_set_new(o, "scopes", list_or_empty(k->scopes));
    json_object_set_new(o, "scoped_teams", list_or_empty(k->scoped_teams));
    json_object_set_new(o, "scoped_organizations", list_or_empty(k->scoped_orgs));
    json_object_set_new(o, "last_rolled_at", kw_json_time(k->last_rolled_at));
    /* keyward's lifecycle fields (PostHog has none of them), after PostHog's. */
    json_object_set_new(o, "expires_at", kw_json_time(k->expires_at));
    json_object_set_new(o, "rate_limit_per_minute",
                        k->rate_limit_per_minute ? json_integer(k->rate_limit_per_minute) : json_null());
    json_object_set_new(o, "previous_value_expires_at", previous_expiry(store, KW_KEY_PERSONAL, k->id, k->joined,
                                                                    k->previous_value_expires_at));
    return o;
}

json_t *kw_json_flag(kw_store *store, const kw_flag *f)
{
    json_t *filters = f->filters ? json_loads(f->filters, 0, NULL) : NULL;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(f->id));
    json_object_set_new(o, "team_id", json_integer(f->project_id));
    json_object_set_new(o, "name", json_string(f->name));
    json_object_set_new(o, "key", json_string(f->key));
    json_object_set_new(o, "filters", filters ? filters : json_object());
    json_object_set_new(o, "deleted", json_boolean(f->deleted));
    json_object_set_new(o, "active", json_boolean(f->active));
    json_object_set_new(o, "created_by", !f->joined ? kw_json_user_by_id(store, f->created_by)
                                         : f->created_by_user.id ? kw_json_user_basic(&f->created_by_user)
                                                                 : json_null());
    json_object_set_new(o, "created_at", kw_json_time(f->created_at));
    json_object_set_new(o, "updated_at", kw_json_time(f->updated_at));
    json_object_set_new(o, "version", json_integer(f->version));
    json_object_set_new(o, "ensure_experience_continuity", json_boolean(f->ensure_experience_continuity));
    return o;
}

/* PostHog's ProjectSecretAPIKeySerializer field order. */
json_t *kw_json_psk(kw_store *store, const kw_psk *k, const char *value)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "label", json_string(k->label));
    json_object_set_new(o, "value", value ? json_string(value) : json_null());
    json_object_set_new(o, "mask_value", json_string(k->mask_value));
    json_object_set_new(o, "created_at", kw_json_time(k->created_at));
    json_object_set_new(o, "created_by", !k->joined ? kw_json_user_by_id(store, k->created_by)
                                         : k->created_by_user.id ? kw_json_user_basic(&k->created_by_user)
                                                                 : json_null());
    json_object_set_new(o, "last_used_at", kw_json_time(k->last_used_at));
    json_object_set_new(o, "last_rolled_at", kw_json_time(k->last_rolled_at));
    json_object_set_new(o, "scopes", list_or_empty(k->scopes));
    json_object_set_new(o, "expires_at", kw_json_time(k->expires_at));
    json_object_set_new(o, "rate_limit_per_minute",
                        k->rate_limit_per_minute ? json_integer(k->rate_limit_per_minute) : json_null());
    json_object_set_new(o, "previous_value_expires_at", previous_expiry(store, KW_KEY_SECRET, k->id, k->joined,
                                                                    k->previous_value_expires_at));
    return o;
}

static json_t *json_text_or(const char *text, json_t *fallback)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    if (v) {
        json_decref(fallback);
        return v;
    }
    return fallback;
}

json_t *kw_json_endpoint(kw_store *store, const kw_endpoint *e)
{
    char path[160];
    snprintf(path, sizeof path, "/api/projects/%lld/endpoints/%s/run", (long long)e->project_id, e->name);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(e->id));
    json_object_set_new(o, "name", json_string(e->name));
    json_object_set_new(o, "description", json_string(e->description ? e->description : ""));
    json_object_set_new(o, "query", json_text_or(e->query, json_object()));
    json_object_set_new(o, "variables", json_text_or(e->variables, json_object()));
    json_object_set_new(o, "endpoint_path", json_string(path));
    json_object_set_new(o, "created_by", !e->joined ? kw_json_user_by_id(store, e->created_by)
                                 : e->created_by_user.id ? kw_json_user_basic(&e->created_by_user)
                                                         : json_null());
    json_object_set_new(o, "created_at", kw_json_time(e->created_at));
    json_object_set_new(o, "updated_at", kw_json_time(e->updated_at));
    return o;
}
