/* usage.h — which scopes each key has actually exercised.
 *
 * The least-privilege report needs, per key, the scopes its requests used.
 * Recording that must cost a request almost nothing and never a database
 * write, so a kw_usage is a fixed in-memory table: key id → two bitmasks
 * (read / write per scope object, the kw_scopes layout) of what was seen
 * and what is not yet stored.  kw_usage_flush merges the pending bits into
 * the keys' scopes_used column with an idempotent OR-merge, so a key is
 * written the first time it exercises a new scope in this process, never
 * once per request, and a flush writes many keys per statement.  Bounded:
 * a full probe window evicts an entry with nothing pending (its bits are
 * already stored); if every candidate still has pending bits the note is
 * dropped and counted. */
#ifndef KEYWARD_USAGE_H
#define KEYWARD_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/key.h"
#include "keyward/scope.h"
#include "keyward/store.h"

typedef struct kw_usage kw_usage;

int kw_usage_new(unsigned slots, kw_usage **out);
void kw_usage_free(kw_usage *u);

/* Notes one use of object:action by the key.  Never allocates or blocks
 * on I/O; one short per-shard critical section. */
void kw_usage_note(kw_usage *u, kw_key_kind kind, const char *key_id, int object,
                   kw_scope_action action);

/* Merges every pending note into the store; serialized internally, safe to
 * call from any thread.  Notes whose write failed stay pending. */
int kw_usage_flush(kw_usage *u, kw_store *store);

/* Notes dropped because the table was full of unflushed keys. */
uint64_t kw_usage_dropped(const kw_usage *u);

/* The JSON list of a usage set: "object:read" for each read bit and
 * "object:write" for each write bit, sorted.  KW_ERR_LIMIT if it does not
 * fit `size`. */
int kw_usage_json(const kw_scopes *used, char *out, size_t size);

#endif
