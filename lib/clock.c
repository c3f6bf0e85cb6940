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

/* Reads `n` digits at *s into *out, advancing *s. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

/* ISO 8601 as SDKs send it: "2024-01-31", "2024-01-31T12:00:00",
 * fractions of a second up to µs (more digits are ignored), and "Z",
 * "+02:00" or "+0200" (no zone = UTC). */
int kw_time_parse(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' || digits(&s, 2, &d))
        return -1;
    if (*s == 'T' || *s == ' ') {
        s++;
        if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi)) return -1;
        if (*s == ':' && (s++, digits(&s, 2, &sec))) return -1;
        if (*s == '.') {
            s++;
            int n = 0;
            for (; *s >= '0' && *s <= '9'; s++, n++)
                if (n < 6) frac = frac * 10 + (*s - '0');
            if (!n) return -1;
            for (; n < 6; n++) frac *= 10;
        }
    }
    int64_t offset = 0;
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (digits(&s, 2, &oh)) return -1;
        if (*s == ':') s++;
        if (digits(&s, 2, &om)) return -1;
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *out = ((int64_t)t - offset) * 1000000 + frac;
    return 0;
}
