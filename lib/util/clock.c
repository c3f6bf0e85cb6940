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

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9') return 0;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 1;
}

int kw_time_parse(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, usec = 0;
    if (!s || !digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return KW_ERR_INVALID;
    if (*s && *s != 'T' && *s != 't' && *s != ' ') return KW_ERR_INVALID;
    /* A bare date (endpoint variables, imports) is midnight UTC. */
    if (*s) {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi)) return KW_ERR_INVALID;
    }
    if (*s == ':') {
        s++;
        if (!digits(&s, 2, &sec)) return KW_ERR_INVALID;
        if (*s == '.' || *s == ',') {
            s++;
            int n = 0, scale = 100000;
            for (; *s >= '0' && *s <= '9'; s++, n++) {
                if (n < 6) usec += (*s - '0') * scale;
                scale /= 10;
            }
            if (n == 0) return KW_ERR_INVALID;
        }
    }
    int offset_min = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om = 0;
        if (!digits(&s, 2, &oh)) return KW_ERR_INVALID;
        if (*s == ':') s++;
        if (*s && !digits(&s, 2, &om)) return KW_ERR_INVALID;
        if (oh > 23 || om > 59) return KW_ERR_INVALID;
        offset_min = sign * (oh * 60 + om);
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 || y < 1970)
        return KW_ERR_INVALID;
    static const int DAYS[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > DAYS[mo - 1] + (mo == 2 && leap)) return KW_ERR_INVALID;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    int64_t secs = (int64_t)timegm(&tm) - (int64_t)offset_min * 60;
    *out = secs * 1000000 + usec;
    return KW_OK;
}
