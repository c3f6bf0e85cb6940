/* store.h — keyward's persistence interface.
 *
 * One interface, several backends (SQLite embedded default, PostgreSQL for
 * several instances).  Records are plain structs with fixed-size fields so
 * the hot read paths (key lookup by hash) need no allocation; the few
 * variable-size fields (flag filters, activity detail) are heap strings owned
 * by the record and released with the matching *_clear function.  Lists are
 * delivered through callbacks so a backend never builds an array the caller
 * must free.  Every function returns KW_OK or a negative kw_err.
 *
 * The interface is declared one family of stored objects per header, the
 * way lib/store/ is written one file per object; this header includes them
 * all, and is the one to include:
 *   store_base.h      the handle, open/close, transactions; users,
 *                     organizations and projects as records
 *   store_orgs.h      users, organizations, memberships, projects
 *   store_keys.h      personal and project secret keys, rolled values,
 *                     last use and scope usage
 *   store_flags.h     feature flag definitions
 *   store_activity.h  the activity log
 *   store_changes.h   generations, the change log, change notifications
 *   store_events.h    captured events and endpoints
 *   store_console.h   console passwords, sessions, invitations, sign-ins
 *   store_import.h    legacy import */
#ifndef KEYWARD_STORE_H
#define KEYWARD_STORE_H

#include "keyward/store_base.h"

#include "keyward/store_activity.h"
#include "keyward/store_changes.h"
#include "keyward/store_console.h"
#include "keyward/store_events.h"
#include "keyward/store_flags.h"
#include "keyward/store_import.h"
#include "keyward/store_keys.h"
#include "keyward/store_orgs.h"

#endif
