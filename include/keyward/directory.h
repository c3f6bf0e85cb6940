/* directory.h — the directory generation as this process last read it.
 *
 * The database bumps a counter, in the writing transaction, on every write
 * to what GET /api/users/@me answers (users, organizations, memberships,
 * projects, a personal key's scoping: kw_store_directory_generation).  An
 * answer cached at generation G is current while the counter still reads
 * G.  Reading the database at every request would cost what the cache
 * saves, so this keeps the last value read, in memory, and re-reads it:
 * after every write this process commits (kw_txn_end, before the write is
 * answered, so the writer's next request sees it), at every poll of
 * `keyward serve` (so another instance's write is seen within one poll),
 * and on every cache miss.  The value only moves forward: two re-reads
 * that finish out of order never bring an older value back — except at a
 * poll that finds the database's counter below it (a restored database),
 * which also drops every read kept at the old values. */
#ifndef KEYWARD_DIRECTORY_H
#define KEYWARD_DIRECTORY_H

#include <stdint.h>

#include "keyward/store.h"

typedef struct kw_directory kw_directory;

/* Reads the generation once; KW_OK or the store's error. */
int kw_directory_new(kw_store *store, kw_directory **out);
void kw_directory_free(kw_directory *d);  /* NULL is a no-op */

/* The last generation read (no database access).  0 for NULL. */
int64_t kw_directory_generation(const kw_directory *d);

/* Re-reads it from the store.  KW_OK, or the store's error (the value
 * read before is kept).  NULL is a no-op. */
int kw_directory_refresh(kw_directory *d);

/* The project `id` (kw_store_project_get) as of the last generation read:
 * from this thread's memory when read at that generation, else from
 * `store` (the directory's own).  Same results as the store's call; with d
 * NULL it is the store's call. */
int kw_directory_project(kw_directory *d, kw_store *store, int64_t id, kw_project *out);

/* kw_store_membership_level the same way, an entry used for at most one
 * second after it was last known current (read, or its generation found
 * unchanged by a poll): a change this process commits applies at once, one
 * written elsewhere at the next poll (and within a second of the last
 * successful poll regardless). */
int kw_directory_membership_level(kw_directory *d, kw_store *store, int64_t user_id,
                                  const char *org_id, int *level);

/* kw_directory_refresh as a poll hook (`keyward serve`'s 200 ms poll). */
void kw_directory_poll(void *d);

#endif
