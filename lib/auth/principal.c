/* principal.c — helpers on a principal (who is calling): clearing it,
 * loading a key's scopes and narrowing from their stored JSON text, and
 * the narrowing checks.  Used by verification and by the "never grant more
 * than you hold" checks, so they live apart from both. */
#include <jansson.h>
#include <string.h>

#include "keyward/auth.h"
#include "keyward/keyward.h"

void kw_principal_clear(kw_principal *p)
{
    p->kind = KW_KEY_NONE;
    p->session = 0;
    p->source = KW_SRC_HEADER;
    p->user_id = 0;
    p->key_id[0] = '\0';
    p->project_id = 0;
    memset(&p->scopes, 0, sizeof p->scopes);
    p->n_scoped_teams = p->n_scoped_orgs = -1;
    p->expires_at = 0;
    p->rate_limit_per_minute = 0;
    p->grace_value = 0;
    p->retry_after = 0;
}

int kw_principal_load_scopes(kw_principal *p, const char *scopes_json, const char *teams_json,
                             const char *orgs_json)
{
    memset(&p->scopes, 0, sizeof p->scopes);
    p->n_scoped_teams = -1;
    p->n_scoped_orgs = -1;
    json_t *list;
    size_t i;
    json_t *item;
    /* A NULL or unreadable scopes list grants nothing: a key holds only
     * the scopes it lists.  Unknown names in stored rows are ignored rather
     * than widening access. */
    if (scopes_json && *scopes_json && (list = json_loads(scopes_json, 0, NULL))) {
        json_array_foreach(list, i, item)
            if (json_is_string(item)) kw_scopes_add(&p->scopes, json_string_value(item));
        json_decref(list);
    }
    if (teams_json && *teams_json && (list = json_loads(teams_json, 0, NULL))) {
        if (json_is_array(list) && json_array_size(list) > 0) {
            p->n_scoped_teams = 0;
            json_array_foreach(list, i, item)
                if (json_is_integer(item) && p->n_scoped_teams < KW_MAX_SCOPED)
                    p->scoped_teams[p->n_scoped_teams++] = json_integer_value(item);
        }
        json_decref(list);
    }
    if (orgs_json && *orgs_json && (list = json_loads(orgs_json, 0, NULL))) {
        if (json_is_array(list) && json_array_size(list) > 0) {
            p->n_scoped_orgs = 0;
            json_array_foreach(list, i, item)
                if (json_is_string(item) && json_string_length(item) <= KW_ID_LEN &&
                    p->n_scoped_orgs < KW_MAX_SCOPED)
                    strcpy(p->scoped_orgs[p->n_scoped_orgs++], json_string_value(item));
        }
        json_decref(list);
    }
    return KW_OK;
}

int kw_principal_team_allowed(const kw_principal *p, int64_t project_id)
{
    if (p->n_scoped_teams < 0) return 1;
    for (int i = 0; i < p->n_scoped_teams; i++)
        if (p->scoped_teams[i] == project_id) return 1;
    return 0;
}

int kw_principal_org_allowed(const kw_principal *p, const char *org_id)
{
    if (p->n_scoped_orgs < 0) return 1;
    for (int i = 0; i < p->n_scoped_orgs; i++)
        if (strcmp(p->scoped_orgs[i], org_id) == 0) return 1;
    return 0;
}
