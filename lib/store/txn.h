/* txn.h — the end of every service write (internal).
 *
 * A change and its audit entries share one transaction; this commits it or
 * rolls it back, maps a storage failure to its problem, and — when the
 * change can alter a verification result — drops the verification cache
 * so the next request sees it; it re-reads the directory generation after
 * every commit (the @me cache). */
#ifndef KW_TXN_H
#define KW_TXN_H

#include "keyward/service.h"

enum { KW_TXN_KEEPS_AUTH = 0, KW_TXN_CHANGES_AUTH = 1 };

/* rc: the result of the writes so far.  Returns 0 when committed. */
int kw_txn_end(const kw_call *c, int rc, int changes_auth, kw_problem *p);

/* A storage failure as a problem (500, or 503 when the backend is down).
 * For results the caller has already checked are not "not found". */
int kw_storage_problem(kw_problem *p, int rc);

#endif
