/* store_pg.c — the PostgreSQL backend entry point.
 *
 * The libpq backend is not part of this build yet (issue 6); until it is,
 * a postgresql:// URL is refused with a clear error instead of silently
 * falling back to SQLite. */
#include "store_backend.h"

#include "keyward/keyward.h"

int kw_store_pg_open(const char *url, kw_store **out)
{
    (void)url;
    *out = NULL;
    return KW_ERR_UNAVAILABLE;
}
