/* capture_batch.h — a staged capture request, shared by capture.c (which
 * stages and stores it) and capture_group.c (which stores many in one
 * transaction).  Internal to the library. */
#ifndef KW_EVENTS_CAPTURE_BATCH_H
#define KW_EVENTS_CAPTURE_BATCH_H

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/workq.h"

struct staged {
    char distinct_id[KW_DISTINCT_ID_MAX + 1];
    char *properties;
};

struct kw_capture_batch {
    kw_workq_link link;  /* first: queued on a capture group's work queue */
    int64_t project_id;
    json_t *payload;  /* the request's body: the events' names point into it */
    json_t *list;     /* its event list (a reference of the batch's own) */
    json_t *keep;     /* what else the events point into (Capture V1's body) */
    size_t n;
    kw_event *events;
    struct staged *staged;
    /* While queued in a capture group. */
    kw_capture_done done;
    void *done_ctx;
};

/* Makes the batch hold `value` (a reference it takes over) as long as it
 * lives. */
void kw_capture_batch_keep(kw_capture_batch *b, json_t *value);
/* Stores a batch in a transaction of its own and frees it (kw_capture and
 * kw_capture_v1, which store on the caller's thread): 0 with *stored set,
 * or 1 with the problem. */
int kw_capture_store_now(const kw_call *c, kw_capture_batch *b, size_t *stored, kw_problem *p);
/* After a batch is stored: learn the group types its events name. */
void kw_capture_batch_stored(const kw_call *c, const kw_capture_batch *b);

#endif
