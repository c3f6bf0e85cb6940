/* txn.c — commit-or-rollback for service writes (see txn.h). */
#include "store/txn.h"

#include "keyward/directory.h"
#include "keyward/keyward.h"

int kw_storage_problem(kw_problem *p, int rc)
{
    return kw_problem_from_store(p, rc == KW_ERR_NOTFOUND || rc == KW_OK ? KW_ERR_DB : rc);
}

int kw_txn_end(const kw_call *c, int rc, int changes_auth, kw_problem *p)
{
    if (!rc) rc = kw_store_commit(c->store);
    if (rc) {
        kw_store_rollback(c->store);
        return kw_storage_problem(p, rc);
    }
    if (changes_auth) kw_verifier_invalidate(c->verifier);
    /* Any write may change what @me answers: the triggers tell whether
     * this one did, by the generation read here. */
    kw_directory_refresh(c->directory);
    return 0;
}
