/* report.h — the key report: rotation, use and least privilege.
 *
 * PostHog's security guide asks people to rotate keys quarterly and grant
 * the least scopes that work; this checks it.  For each key the report
 * gives its dates, three flags — not_rotated (older than rotation_days
 * since created or last rolled), unused (never used, or not for
 * unused_days), expiring_soon (expires within expiring_days) — plus
 * expired, and the scopes granted, the scopes its requests exercised
 * (scopes_used, recorded by usage.h) and the least scope set that would
 * still serve it: the used set, within what is granted ("*" becomes the
 * explicit list).  A key that exercised nothing is suggested for revoking.
 * The library builds JSON (jansson) and never prints: the API and the CLI
 * share it. */
#ifndef KEYWARD_REPORT_H
#define KEYWARD_REPORT_H

#include <jansson.h>

#include "keyward/store.h"

#define KW_REPORT_DAY_US ((int64_t)86400 * 1000000)

typedef struct kw_report_opts {
    kw_time now;
    int rotation_days;  /* default 90 */
    int unused_days;    /* default 30 */
    int expiring_days;  /* default 14 */
} kw_report_opts;

/* Defaults, with now = kw_now(). */
void kw_report_opts_init(kw_report_opts *o);

typedef struct kw_report_flags {
    int not_rotated, unused, expiring_soon, expired;
} kw_report_flags;

void kw_report_flags_of(kw_time created_at, kw_time last_rolled_at, kw_time last_used_at,
                        kw_time expires_at, const kw_report_opts *o, kw_report_flags *out);

/* The suggested least scopes as a JSON array (new reference), and in
 * *action "revoke" (nothing used), "narrow" (grants more than used) or
 * "keep".  Both lists are JSON text; "" = none. */
json_t *kw_report_suggest(const char *granted_json, const char *used_json, const char **action);

/* One entry per key. */
json_t *kw_report_pkey(const kw_pkey *key, const kw_report_opts *o);
json_t *kw_report_psk(const kw_psk *key, const kw_report_opts *o);

/* Appends to `results` the entries of a user's personal keys, all of them
 * (`project` NULL) or only those that reach `project`. */
int kw_report_user_keys(kw_store *store, int64_t user_id, const kw_project *project,
                        const kw_report_opts *o, json_t *results);
/* Appends the entries of a project's secret keys. */
int kw_report_project_keys(kw_store *store, const kw_project *project, const kw_report_opts *o,
                           json_t *results);
/* {"generated_at", "rotation_days", "unused_days", "expiring_days",
 *  "count", "results"}; steals `results`. */
json_t *kw_report_wrap(json_t *results, const kw_report_opts *o);

#endif
