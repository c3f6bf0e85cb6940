/* clock.c — the one place keyward reads the time.
 *
 * Every timestamp (created_at, last_used_at, expiry) comes from kw_now() so
 * tests can pin the clock instead of sleeping. */
#include "keyward/keyward.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static _Atomic int64_t fixed_now;

void kw_clock_set(int64_t fixed_us) { atomic_store(&fixed_now, fixed_us); }

int64_t kw_now(void)
{
    int64_t fixed = atomic_load_explicit(&fixed_now, memory_order_relaxed);
    if (fixed) return fixed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void kw_time_format(int64_t us, char out[KW_TIME_TEXT])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, KW_TIME_TEXT, "%.19s.%06dZ", date, (int)(us % 1000000));
}
