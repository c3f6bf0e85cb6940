/* scope.c — scope names and the bitmask scope set.
 *
 * The object list is PostHog's (so scripts written for PostHog validate the
 * same) plus keyward's own personal_api_key.  Order matters only inside a
 * process: sets are stored as the user's JSON list, never as bits, so
 * appending objects here never breaks stored data. */
#include "keyward/keyward.h"

#include <string.h>

static const char *const OBJECTS[] = {
    "action", "activity_log", "alert", "annotation", "batch_export", "cohort",
    "dashboard", "dashboard_template", "early_access_feature", "endpoint",
    "error_tracking", "event_definition", "experiment", "export",
    "feature_flag", "group", "hog_function", "insight", "integration",
    "notebook", "organization", "organization_member", "person", "plugin",
    "project", "property_definition", "query", "session_recording",
    "session_recording_playlist", "sharing_configuration", "subscription",
    "survey", "user", "webhook", "personal_api_key",
};
#define OBJECT_COUNT ((int)(sizeof OBJECTS / sizeof OBJECTS[0]))
_Static_assert(sizeof OBJECTS / sizeof OBJECTS[0] <= 64, "scope objects must fit a uint64_t");

int kw_scope_object_count(void) { return OBJECT_COUNT; }

const char *kw_scope_object_name(int index)
{
    return index >= 0 && index < OBJECT_COUNT ? OBJECTS[index] : NULL;
}

int kw_scope_object_index(const char *name, size_t len)
{
    for (int i = 0; i < OBJECT_COUNT; i++)
        if (strlen(OBJECTS[i]) == len && memcmp(OBJECTS[i], name, len) == 0) return i;
    return -1;
}

int kw_scope_parse(const char *scope, int *object, kw_scope_action *action)
{
    const char *colon = strchr(scope, ':');
    if (!colon) return KW_ERR_INVALID;
    int obj = kw_scope_object_index(scope, (size_t)(colon - scope));
    if (obj < 0) return KW_ERR_INVALID;
    if (strcmp(colon + 1, "read") == 0)
        *action = KW_SCOPE_READ;
    else if (strcmp(colon + 1, "write") == 0)
        *action = KW_SCOPE_WRITE;
    else
        return KW_ERR_INVALID;
    *object = obj;
    return KW_OK;
}

int kw_scopes_add(kw_scopes *set, const char *scope)
{
    if (strcmp(scope, "*") == 0) {
        set->wildcard = 1;
        return KW_OK;
    }
    int obj;
    kw_scope_action action;
    int rc = kw_scope_parse(scope, &obj, &action);
    if (rc) return rc;
    uint64_t bit = (uint64_t)1 << obj;
    set->read |= bit;
    if (action == KW_SCOPE_WRITE) set->write |= bit;
    return KW_OK;
}

int kw_scopes_allow(const kw_scopes *set, int object, kw_scope_action action)
{
    if (set->wildcard) return 1;
    if (object < 0 || object >= OBJECT_COUNT) return 0;
    uint64_t bit = (uint64_t)1 << object;
    return ((action == KW_SCOPE_WRITE ? set->write : set->read) & bit) != 0;
}

int kw_scopes_within(const kw_scopes *inner, const kw_scopes *outer)
{
    if (outer->wildcard) return 1;
    if (inner->wildcard) return 0;
    return (inner->read & ~outer->read) == 0 && (inner->write & ~outer->write) == 0;
}

int kw_scopes_empty(const kw_scopes *set)
{
    return !set->wildcard && set->read == 0 && set->write == 0;
}
