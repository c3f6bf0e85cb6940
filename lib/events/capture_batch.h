/* capture_batch.h — a staged capture request, shared by capture.c (which
 * stages and stores it) and capture_group.c (which stores many in one
 * transaction).  Internal to the library. */
#ifndef KW_EVENTS_CAPTURE_BATCH_H
#define KW_EVENTS_CAPTURE_BATCH_H

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/workq.h"

/* A staged request keeps no reference to its JSON: what its events need
 * (names, ids, properties as text, the group type names they use) is
 * copied into one text buffer, and the events array shares the batch's
 * own allocation.  The JSON is then freed on the thread that parsed it,
 * and the thread that stores the batch frees two blocks: a parsed body
 * is dozens of small blocks, and freeing them on another thread than the
 * one that allocated them makes both contend for the allocator's arena. */
struct kw_capture_batch {
    kw_workq_link link;  /* first: queued on a capture group's work queue */
    int64_t project_id;
    size_t n;
    kw_event *events;  /* n, right after this struct; their text is in `text` */
    char *text;
    size_t n_group_types;
    const char *group_types[KW_GROUP_TYPES_SEEN_MAX];  /* into `text` */
    /* While queued in a capture group. */
    kw_capture_done done;
    void *done_ctx;
    int answered;  /* its request was answered before it is stored (ack window) */
    size_t bytes;  /* the memory it holds: its block and its text */
};
/* Stores a batch in a transaction of its own and frees it (kw_capture and
 * kw_capture_v1, which store on the caller's thread): 0 with *stored set,
 * or 1 with the problem. */
int kw_capture_store_now(const kw_call *c, kw_capture_batch *b, size_t *stored, kw_problem *p);
/* A store of b's events refused with rc: KW_ERR_NOTFOUND when its
 * project is gone (the store refuses events of a deleted project as it
 * refuses any constraint, KW_ERR_EXISTS; a lookup tells them apart, on
 * this rare path only), else rc. */
int kw_capture_refusal(const kw_call *c, const kw_capture_batch *b, int rc);
/* After a batch is stored: learn the group types its events name. */
void kw_capture_batch_stored(const kw_call *c, const kw_capture_batch *b);

#endif
