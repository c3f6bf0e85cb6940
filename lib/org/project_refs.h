/* project_refs.h — a growable list of (project id, organization id),
 * collected from a store listing before a transaction writes one activity
 * entry per project.  Every project is kept: a list cut at a fixed size
 * would silently leave some projects' logs without the entry. */
#ifndef KW_ORG_PROJECT_REFS_H
#define KW_ORG_PROJECT_REFS_H

#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

typedef struct kw_project_refs {
    size_t n, cap;
    const char *only_org;  /* when set, projects of other organizations are skipped */
    struct kw_project_ref {
        int64_t id;
        char org[KW_ID_LEN + 1];
    } *at;
} kw_project_refs;

/* A kw_project_cb: appends p (KW_ERR_NOMEM stops the listing). */
static inline int kw_project_refs_add(void *ctx, const kw_project *p)
{
    kw_project_refs *list = ctx;
    if (list->only_org && strcmp(p->org_id, list->only_org) != 0) return 0;
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct kw_project_ref *at = realloc(list->at, cap * sizeof *at);
        if (!at) return KW_ERR_NOMEM;
        list->at = at;
        list->cap = cap;
    }
    list->at[list->n].id = p->id;
    strcpy(list->at[list->n++].org, p->org_id);
    return 0;
}

#endif
