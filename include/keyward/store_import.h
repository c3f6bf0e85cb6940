/* store_import.h — the store's side of a legacy import: rows written with
 * the ids and times they had, across the directory and the keys (lib/store/
 * users.c, keys.c).  Part of the store API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_IMPORT_H
#define KEYWARD_STORE_IMPORT_H

#include "keyward/store_base.h"
#include "keyward/store_keys.h"

/* Legacy import (lib/org/import.c): rows with their original ids and times.
 * Each returns KW_OK when inserted and KW_ERR_EXISTS when a row with that
 * id (or another unique value) is already there, changing nothing — so an
 * import can be re-run.  import_done runs after the last row of one import
 * transaction (PostgreSQL moves its id sequences past imported ids). */
int kw_store_import_user(kw_store *store, const kw_user *user);
int kw_store_import_org(kw_store *store, const kw_org *org);
int kw_store_import_project(kw_store *store, const kw_project *project);
int kw_store_import_pkey(kw_store *store, const kw_pkey *key);
int kw_store_import_done(kw_store *store);

#endif
