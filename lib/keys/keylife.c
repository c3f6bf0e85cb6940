/* keylife.c — expires_at and rate_limit_per_minute of a key (see keylife.h).
 *
 * A past expires_at is refused where it would produce a key that can never
 * work (create, roll) and accepted on update, where it is the way to say
 * "stop this key now" while keeping its row, mask and history for the
 * report.  Expiry is inclusive (kw_now() >= expires_at is expired), so
 * "in the future" here means strictly after now. */
#include "keys/keylife.h"

#include "keyward/keyward.h"
#include "keyward/service.h"
#include <string.h>

#include "keyward/validate.h"

static json_t *time_or_null(int64_t t)
{
    if (!t) return json_null();
    char text[KW_TIME_TEXT];
    kw_time_format(t, text);
    return json_string(text);
}

int kw_life_apply(const json_t *body, enum kw_life_mode mode, const char *audit_type,
                  int64_t *expires_at, int32_t *rate_limit, json_t *changes, kw_problem *p)
{
    int has_expiry = 0, has_rate = 0;
    int64_t expiry = 0, rate = 0;
    if (!body) return 0;
    if (kw_v_datetime(body, "expires_at", &has_expiry, &expiry, p)) return 1;
    if (has_expiry && expiry && mode != KW_LIFE_UPDATE && expiry <= kw_now()) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "expires_at",
                       "Expiry must be in the future.");
        return 1;
    }
    if (mode != KW_LIFE_ROLL &&
        kw_v_int(body, "rate_limit_per_minute", 1, KW_RATE_LIMIT_MAX, &has_rate, &rate, p))
        return 1;
    if (has_expiry && expiry != *expires_at) {
        if (changes)
            json_array_append_new(changes, kw_audit_change(audit_type, "changed", "expires_at",
                                                           time_or_null(*expires_at),
                                                           time_or_null(expiry)));
        *expires_at = expiry;
    }
    if (has_rate && rate != *rate_limit) {
        if (changes)
            json_array_append_new(
                changes, kw_audit_change(audit_type, "changed", "rate_limit_per_minute",
                                         *rate_limit ? json_integer(*rate_limit) : json_null(),
                                         rate ? json_integer(rate) : json_null()));
        *rate_limit = (int32_t)rate;
    }
    return 0;
}

int kw_life_roll_grace(const json_t *body, int64_t *seconds, json_t **context, kw_problem *p)
{
    static const char FIELD[] = "expire_previous_in_seconds";
    *seconds = 0;
    *context = NULL;
    json_t *v = body ? json_object_get(body, FIELD) : NULL;
    if (!v) return 0;
    /* Stricter than kw_v_int: null is not "absent" here, as in DRF. */
    if (json_is_null(v)) {
        kw_problem_set(p, KW_P_VALIDATION, "null", FIELD, "This field may not be null.");
        return 1;
    }
    int present;
    if (kw_v_int(body, FIELD, 0, KW_ROLL_GRACE_MAX_SECONDS, &present, seconds, p)) return 1;
    *context = json_pack("{sI}", FIELD, (json_int_t)*seconds);
    return 0;
}

int kw_life_keep_previous(const kw_call *c, kw_key_kind kind, const char *key_id,
                          const char *previous, int64_t seconds, int64_t now)
{
    int keep = seconds > 0 && strncmp(previous, "sha256$", 7) == 0;
    return kw_store_rolled_set(c->store, kind, key_id, keep ? previous : NULL,
                               now + seconds * 1000000, now);
}
