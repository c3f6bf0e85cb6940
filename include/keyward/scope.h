/* scope.h — API key scopes ("object:action", "*").
 *
 * A scope set is two bitmasks over the known objects, so checking a route's
 * required scope on the hot path is two ANDs.  "write" implies "read".  An
 * empty set (no scopes, or a stored NULL) grants nothing. */
#ifndef KEYWARD_SCOPE_H
#define KEYWARD_SCOPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum kw_scope_action { KW_SCOPE_READ = 0, KW_SCOPE_WRITE = 1 } kw_scope_action;

typedef struct kw_scopes {
    uint64_t read;   /* bit i: object i may be read */
    uint64_t write;  /* bit i: object i may be written */
    int wildcard;    /* "*" */
} kw_scopes;

/* Index of an object name ("feature_flag"), or -1. */
int kw_scope_object_index(const char *name, size_t len);
const char *kw_scope_object_name(int index);
int kw_scope_object_count(void);

/* Parses "object:action" or "*" and adds it to *set.  KW_ERR_INVALID when
 * unknown or malformed. */
int kw_scopes_add(kw_scopes *set, const char *scope);

/* Parses a required scope such as "feature_flag:read" into object/action. */
int kw_scope_parse(const char *scope, int *object, kw_scope_action *action);

/* True when the set grants `action` on `object`. */
int kw_scopes_allow(const kw_scopes *set, int object, kw_scope_action action);

/* True when every grant of `inner` is also granted by `outer`. */
int kw_scopes_within(const kw_scopes *inner, const kw_scopes *outer);

/* True when the set grants nothing. */
int kw_scopes_empty(const kw_scopes *set);

#endif
