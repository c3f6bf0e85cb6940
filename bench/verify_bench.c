/* verify_bench.c — kw_bench_verify: what one personal-key verification costs,
 * in process, against a real store of N keys: SQLite, and PostgreSQL when
 * a server URL is given (--pg URL or $BENCH_PG_URL).
 *
 * For each backend and N it builds a fresh store (SQLite: a temp file;
 * PostgreSQL: a fresh database on the server, dropped afterwards) with one
 * organization, one user per 10 keys — the per-user limit — every key
 * scoped ["feature_flag:read"] and marked used "now", so the run measures
 * the steady state where no last_used_at write is pending.  SQLite is
 * filled through the store API in one transaction; PostgreSQL by COPY over
 * libpq (bench only: 1M keys through one INSERT per key would take longer
 * than everything else).  Then it times, in 5 interleaved rounds (medians
 * reported; see ROUNDS):
 *
 *   (a) SHA-256 of a 58-byte key (OpenSSL EVP, algorithm fetched once,
 *       context reused): the floor
 *   (b) kw_key_classify (prefix, length, alphabet, CRC32 checksum)
 *   (h) kw_verify_personal, cache-hot: a working set of HOT_SET keys
 *   (u) kw_verify_personal, uniform over all N keys (the real 64K-slot
 *       cache: hits while N fits, mostly misses at 1M)
 *   (m) kw_verify_personal, every call a miss (the whole cache is
 *       dropped before each call): the store path alone
 *   (j) kw_store_pkey_auth_by_hash: key + user's is_active, one JOIN
 *   (t) kw_store_pkey_by_hash then kw_store_user_get: the two statements
 *       the miss path ran before (j)
 *   (d) bad-checksum keys (must not touch the store)
 *   (e) valid-format keys that are not stored
 *
 * and (a) and (h) again on 2 threads.  It prints Markdown: per backend and
 * N a table of ops/s, ns/op and the ratio to (a); the database bytes per
 * key; and at the end one table of every case across N with the ratios
 * 100k/1k and 1M/1k (goal: flat, ~1.0×).
 *
 * Times are for comparison within one run on one machine, not absolutes.
 *
 *   kw_bench_verify [--seconds S] [--threads T] [--only TEXT]
 *                   [--backend sqlite|postgresql|both] [--pg URL] [N ...]
 *
 * Default N: 1000 and 100000; with BENCH_FULL=1 also 1000000.  Default
 * backend: both when a PostgreSQL URL is known, else sqlite.  S (default
 * 1) is the time per case, split over the rounds; T (default 2) the
 * thread count of the scaling rows; --only runs just the cases whose name
 * contains TEXT (for a profiler). */
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyward/auth.h"
#include "keyward/keyward.h"
#include "keyward/store.h"

#define KEYS_PER_USER 10
#define SAMPLE 65536 /* bad / absent keys: enough distinct ones to defeat caches */
#define SCOPES "[\"feature_flag:read\"]"
#define HOT_SET 1000 /* keys of the cache-hot case */

typedef char key_text[KW_KEY_LEN + 1];
typedef char hash_text[KW_HASH_LEN + 1];

struct bench {
    kw_store *store;
    kw_verifier *verifier;
    kw_verifier *miss_verifier; /* case (m): its own cache, emptied before every call */
    size_t n;
    key_text *keys;    /* the N stored keys, plaintext */
    hash_text *hashes; /* their secure_value */
    key_text *bad;     /* SAMPLE stored keys with one checksum char changed */
    key_text *absent;  /* SAMPLE fresh keys, never stored */
    int64_t first_user, n_users;
};

/* One operation; returns 0 when the result is the expected one. */
typedef int (*op_fn)(struct bench *b, uint64_t r, void *scratch);

/* Keeps results observable.  Per thread: a shared atomic would bounce one
 * cache line between the cores and cap the scaling rows. */
static _Thread_local volatile unsigned sink;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the operations ---------------------------------------------------- */

static EVP_MD *sha256_md;
static void fetch_sha256(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

/* The floor is SHA-256 done the fastest way OpenSSL 3 offers: the
 * algorithm fetched once and one context per thread reused (its one-shot
 * SHA256() fetches and allocates on every call and is ~2x slower, which
 * would flatter every ratio below). */
static int op_sha256(struct bench *b, uint64_t r, void *scratch)
{
    (void)scratch;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    static _Thread_local EVP_MD_CTX *ctx;
    pthread_once(&once, fetch_sha256);
    if (!ctx) ctx = EVP_MD_CTX_new();
    unsigned char d[SHA256_DIGEST_LENGTH];
    unsigned n;
    if (!ctx || EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, b->keys[r % b->n], KW_KEY_LEN) != 1 || EVP_DigestFinal_ex(ctx, d, &n) != 1)
        return -1;
    sink ^= d[0];
    return 0;
}

static int op_key_hash(struct bench *b, uint64_t r, void *scratch)
{
    (void)scratch;
    hash_text h;
    int rc = kw_key_hash(b->keys[r % b->n], KW_KEY_LEN, h);
    sink ^= (unsigned char)h[9];
    return rc;
}

static int op_classify(struct bench *b, uint64_t r, void *scratch)
{
    (void)scratch;
    kw_key_info info;
    return kw_key_classify(b->keys[r % b->n], KW_KEY_LEN, &info) == KW_FORMAT_KEYWARD ? 0 : 1;
}

static int op_verify(struct bench *b, uint64_t r, void *scratch)
{
    return kw_verify_personal(b->verifier, b->keys[r % b->n], KW_KEY_LEN, scratch) == KW_VERIFY_OK
               ? 0
               : 1;
}

static int op_verify_hot(struct bench *b, uint64_t r, void *scratch)
{
    size_t set = b->n < HOT_SET ? b->n : HOT_SET;
    return kw_verify_personal(b->verifier, b->keys[r % set], KW_KEY_LEN, scratch) == KW_VERIFY_OK
               ? 0
               : 1;
}

static int op_verify_miss(struct bench *b, uint64_t r, void *scratch)
{
    /* A second verifier, so the other cases' cache stays warm; the drop is
     * an atomic add (and a compare-and-swap) and makes every lookup miss. */
    kw_verifier_drop_cache(b->miss_verifier);
    return kw_verify_personal(b->miss_verifier, b->keys[r % b->n], KW_KEY_LEN, scratch) ==
                   KW_VERIFY_OK
               ? 0
               : 1;
}

static int op_auth_by_hash(struct bench *b, uint64_t r, void *scratch)
{
    int active = 0;
    int rc = kw_store_pkey_auth_by_hash(b->store, b->hashes[r % b->n], scratch, &active);
    return rc ? rc : !active;
}

static int op_two_queries(struct bench *b, uint64_t r, void *scratch)
{
    kw_pkey *k = scratch;
    int rc = kw_store_pkey_by_hash(b->store, b->hashes[r % b->n], k);
    kw_user u;
    if (!rc) rc = kw_store_user_get(b->store, k->user_id, &u);
    return rc ? rc : !u.is_active;
}

static int op_by_hash(struct bench *b, uint64_t r, void *scratch)
{
    return kw_store_pkey_by_hash(b->store, b->hashes[r % b->n], scratch);
}

static int op_user_get(struct bench *b, uint64_t r, void *scratch)
{
    return kw_store_user_get(b->store, b->first_user + (int64_t)(r % (uint64_t)b->n_users), scratch);
}

static int op_load_scopes(struct bench *b, uint64_t r, void *scratch)
{
    (void)b;
    (void)r;
    return kw_principal_load_scopes(scratch, SCOPES, "", "");
}

static int op_verify_bad(struct bench *b, uint64_t r, void *scratch)
{
    return kw_verify_personal(b->verifier, b->bad[r % SAMPLE], KW_KEY_LEN, scratch) ==
                   KW_VERIFY_INVALID
               ? 0
               : 1;
}

static int op_verify_absent(struct bench *b, uint64_t r, void *scratch)
{
    return kw_verify_personal(b->verifier, b->absent[r % SAMPLE], KW_KEY_LEN, scratch) ==
                   KW_VERIFY_INVALID
               ? 0
               : 1;
}

/* ---- the timing loop ---------------------------------------------------- */

struct worker {
    pthread_t thread;
    struct bench *b;
    op_fn fn;
    double seconds;
    uint64_t seed;
    uint64_t ops;
    double elapsed;
    int failed;
    pthread_barrier_t *start;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* Large enough for a kw_pkey (~12 KiB), a kw_user or a kw_principal;
     * one per thread, like the server's thread-local row buffer. */
    size_t scratch_size = sizeof(kw_pkey) > sizeof(kw_principal) ? sizeof(kw_pkey)
                                                                  : sizeof(kw_principal);
    void *scratch = calloc(1, scratch_size);
    if (!scratch) {
        w->failed = 1;
        pthread_barrier_wait(w->start);
        return NULL;
    }
    uint64_t rng = w->seed;
    /* Warm up on this thread: opens its SQLite connection and prepares the
     * statements, which a server thread does once in its life. */
    double warm_end = now_s() + w->seconds / 10;
    while (now_s() < warm_end)
        for (int i = 0; i < 64; i++) w->failed |= w->fn(w->b, xorshift(&rng), scratch) != 0;
    pthread_barrier_wait(w->start);
    double t0 = now_s(), t = t0, end = t0 + w->seconds;
    uint64_t ops = 0;
    while (t < end) {
        for (int i = 0; i < 64; i++) w->failed |= w->fn(w->b, xorshift(&rng), scratch) != 0;
        ops += 64;
        t = now_s();
    }
    w->ops = ops;
    w->elapsed = t - t0;
    free(scratch);
    return NULL;
}

struct result {
    double ops_per_s; /* all threads together */
    double ns_per_op; /* mean time of one operation on one thread */
};

static int run_case(struct bench *b, op_fn fn, int threads, double seconds, struct result *out)
{
    struct worker w[64];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.b = b, .fn = fn, .seconds = seconds,
                               .seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) ^ (uint64_t)time(NULL),
                               .start = &start};
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
            fprintf(stderr, "kw_bench_verify: cannot start a thread\n");
            exit(1);
        }
    }
    int failed = 0;
    out->ops_per_s = 0;
    out->ns_per_op = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        failed |= w[i].failed;
        if (w[i].ops) {
            out->ops_per_s += (double)w[i].ops / w[i].elapsed;
            out->ns_per_op += w[i].elapsed * 1e9 / (double)w[i].ops / threads;
        }
    }
    pthread_barrier_destroy(&start);
    return failed;
}

/* ---- building the store ----------------------------------------------- */

static void die(const char *what, int rc)
{
    fprintf(stderr, "kw_bench_verify: %s: %s\n", what, rc ? kw_strerror(rc) : strerror(errno));
    exit(1);
}

static void remove_db(const char *path)
{
    char p[PATH_MAX + 16];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* Marks every key used now, so verification does not queue last_used_at
 * writes (the steady state of a server that has run for an hour). */
static void mark_all_used(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die("sqlite3_open", KW_ERR_DB);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE personal_api_keys SET last_used_at = %lld",
             (long long)kw_now());
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) die(sqlite3_errmsg(db), KW_ERR_DB);
    sqlite3_close(db);
}

static void fill_store(struct bench *b, const char *path, double *insert_s)
{
    int rc;
    if ((rc = kw_store_open(path, &b->store))) die("kw_store_open", rc);
    static kw_pkey k; /* 12 KiB */
    kw_org org;
    memset(&org, 0, sizeof org);
    strcpy(org.name, "bench");
    double t0 = now_s();
    if ((rc = kw_store_begin(b->store))) die("kw_store_begin", rc);
    if ((rc = kw_store_org_create(b->store, &org))) die("kw_store_org_create", rc);
    kw_user u;
    for (size_t i = 0; i < b->n; i++) {
        if (i % KEYS_PER_USER == 0) {
            memset(&u, 0, sizeof u);
            snprintf(u.email, sizeof u.email, "bench%zu@example.com", i / KEYS_PER_USER);
            u.is_active = 1;
            if ((rc = kw_store_user_create(b->store, &u))) die("kw_store_user_create", rc);
            if ((rc = kw_store_membership_set(b->store, u.id, org.id, KW_LEVEL_MEMBER)))
                die("kw_store_membership_set", rc);
            if (i == 0) b->first_user = u.id;
            b->n_users++;
        }
        memset(&k, 0, sizeof k);
        if ((rc = kw_uuid_v4(k.id)) || (rc = kw_key_generate(KW_KEY_PERSONAL, b->keys[i])))
            die("random", rc);
        kw_key_hash(b->keys[i], KW_KEY_LEN, b->hashes[i]);
        k.user_id = u.id;
        strcpy(k.label, "bench");
        strcpy(k.secure_value, b->hashes[i]);
        kw_key_mask(b->keys[i], KW_KEY_LEN, k.mask_value);
        k.created_at = kw_now();
        strcpy(k.scopes, SCOPES);
        if ((rc = kw_store_pkey_insert(b->store, &k, INT_MAX))) die("kw_store_pkey_insert", rc);
    }
    if ((rc = kw_store_commit(b->store))) die("kw_store_commit", rc);
    *insert_s = now_s() - t0;
    /* Closing the only connection checkpoints the WAL into the file. */
    kw_store_close(b->store);
    b->store = NULL;
    mark_all_used(path);
}

static void make_samples(struct bench *b)
{
    for (size_t i = 0; i < SAMPLE; i++) {
        memcpy(b->bad[i], b->keys[i % b->n], sizeof(key_text));
        char *last = &b->bad[i][KW_KEY_LEN - 1];
        *last = *last == 'a' ? 'b' : 'a'; /* a checksum char: CRC32 no longer matches */
        kw_key_info info;
        if (kw_key_classify(b->bad[i], KW_KEY_LEN, &info) != KW_FORMAT_INVALID)
            die("bad-checksum sample still classifies as valid", KW_ERR_INVALID);
        int rc = kw_key_generate(KW_KEY_PERSONAL, b->absent[i]);
        if (rc) die("kw_key_generate", rc);
    }
}

/* ---- one N ---------------------------------------------------------------- */

static const char *only; /* --only: case name filter, or NULL */

/* Cases are measured in ROUNDS interleaved slices of seconds/ROUNDS each,
 * and every figure is a median over rounds; a ratio is the median of the
 * per-round ratios, so both sides of it saw the same moment of a shared,
 * noisy machine (its speed was seen to swing 2.5x within one run). */
#define ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double t[ROUNDS];
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* median over rounds of a[r] / b[r] */
static double median_ratio(const double *a, const double *b)
{
    double q[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) q[r] = b[r] > 0 ? a[r] / b[r] : 0;
    return median(q, ROUNDS);
}

/* ---- PostgreSQL: a fresh database per N, filled by COPY ------------------- */

static PGconn *pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "kw_bench_verify: %s: %s", url, PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "kw_bench_verify: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

/* The admin URL with its database name replaced. */
static void pg_url_for(const char *admin, const char *db, char *out, size_t size)
{
    const char *slash = strrchr(admin, '/');
    const char *q = strchr(slash ? slash : admin, '?');
    int base = slash ? (int)(slash - admin) : (int)strlen(admin);
    snprintf(out, size, "%.*s/%s%s", base, admin, db, q ? q : "");
}

/* COPY rows built by line(i, buf) for i in [0, rows). */
static void pg_copy(PGconn *c, const char *copy_sql, size_t rows,
                    int (*line)(struct bench *, size_t, char *, size_t), struct bench *b)
{
    PGresult *start = PQexec(c, copy_sql);
    if (PQresultStatus(start) != PGRES_COPY_IN) {
        fprintf(stderr, "kw_bench_verify: %s: %s", copy_sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(start);
    char chunk[1 << 16];
    size_t used = 0;
    for (size_t i = 0; i < rows; i++) {
        char row[512];
        int n = line(b, i, row, sizeof row);
        if (used + (size_t)n > sizeof chunk) {
            if (PQputCopyData(c, chunk, (int)used) != 1) die("PQputCopyData", KW_ERR_DB);
            used = 0;
        }
        memcpy(chunk + used, row, (size_t)n);
        used += (size_t)n;
    }
    if (used && PQputCopyData(c, chunk, (int)used) != 1) die("PQputCopyData", KW_ERR_DB);
    if (PQputCopyEnd(c, NULL) != 1) die("PQputCopyEnd", KW_ERR_DB);
    PGresult *r;
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "kw_bench_verify: COPY: %s", PQerrorMessage(c));
            exit(1);
        }
        PQclear(r);
    }
}

static const char *bench_org;  /* the organization's id during a PostgreSQL fill */

static int user_line(struct bench *b, size_t i, char *buf, size_t size)
{
    char uuid[KW_ID_LEN + 1];
    kw_uuid_v4(uuid);
    return snprintf(buf, size, "%lld\t%s\tbench%zu@example.com\t\tt\t%lld\n",
                    (long long)(b->first_user + (int64_t)i), uuid, i, (long long)kw_now());
}

static int member_line(struct bench *b, size_t i, char *buf, size_t size)
{
    return snprintf(buf, size, "%lld\t%s\t1\t%lld\n", (long long)(b->first_user + (int64_t)i),
                    bench_org, (long long)kw_now());
}

static int key_line(struct bench *b, size_t i, char *buf, size_t size)
{
    char id[KW_ID_LEN + 1], mask[KW_MASK_MAX];
    kw_uuid_v4(id);
    kw_key_mask(b->keys[i], KW_KEY_LEN, mask);
    int64_t now = kw_now();
    /* COPY text format: the JSON's quotes need no escaping, backslashes would. */
    return snprintf(buf, size, "%s\t%lld\tbench\t%s\t%s\t%lld\t%lld\t%s\n", id,
                    (long long)(b->first_user + (int64_t)(i / KEYS_PER_USER)), b->hashes[i], mask,
                    (long long)now, (long long)now, SCOPES);
}

/* Fills a fresh database `db` (created here) and returns its URL in url. */
static void fill_pg(struct bench *b, const char *admin, const char *db, char *url, size_t size,
                    double *insert_s)
{
    PGconn *a = pg_connect(admin);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
    pg_exec(a, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    pg_exec(a, sql);
    PQfinish(a);
    pg_url_for(admin, db, url, size);
    int rc;
    if ((rc = kw_store_open(url, &b->store))) die("kw_store_open (PostgreSQL)", rc); /* migrations */
    kw_org org;
    memset(&org, 0, sizeof org);
    strcpy(org.name, "bench");
    if ((rc = kw_store_org_create(b->store, &org))) die("kw_store_org_create", rc);
    kw_store_close(b->store);
    b->store = NULL;
    for (size_t i = 0; i < b->n; i++) {
        if ((rc = kw_key_generate(KW_KEY_PERSONAL, b->keys[i]))) die("random", rc);
        kw_key_hash(b->keys[i], KW_KEY_LEN, b->hashes[i]);
    }
    double t0 = now_s();
    PGconn *c = pg_connect(url);
    b->first_user = 1;
    b->n_users = (int64_t)((b->n + KEYS_PER_USER - 1) / KEYS_PER_USER);
    bench_org = org.id;
    pg_exec(c, "BEGIN");
    pg_copy(c, "COPY users(id, uuid, email, first_name, is_active, created_at) FROM STDIN",
            (size_t)b->n_users, user_line, b);
    pg_copy(c, "COPY memberships(user_id, org_id, level, created_at) FROM STDIN", (size_t)b->n_users,
            member_line, b);
    pg_copy(c, "COPY personal_api_keys(id, user_id, label, secure_value, mask_value, created_at, "
               "last_used_at, scopes) FROM STDIN",
            b->n, key_line, b);
    pg_exec(c, "COMMIT");
    *insert_s = now_s() - t0;
    pg_exec(c, "VACUUM ANALYZE");
    PQfinish(c);
}

/* pg_total_relation_size: heap + indexes + TOAST. */
static double pg_bytes(const char *url, const char *what)
{
    PGconn *c = pg_connect(url);
    PGresult *r = PQexec(c, what);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) die(PQerrorMessage(c), KW_ERR_DB);
    double v = strtod(PQgetvalue(r, 0, 0), NULL);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void drop_pg(const char *admin, const char *db)
{
    PGconn *a = pg_connect(admin);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    pg_exec(a, sql);
    PQfinish(a);
}

/* ---- one backend and N -------------------------------------------------- */

enum { C_SHA1, C_HOT1, C_UNI1, C_MISS1, C_JOIN1, C_TWO1, C_KHASH, C_CLASSIFY, C_BYHASH, C_USERGET, C_SCOPES1, C_BAD, C_ABSENT,
       C_SHAT, C_HOTT, C_NCASES };

/* ns/op medians of every run, for the summary across N at the end. */
#define MAX_RUNS 16
static struct {
    const char *backend;
    size_t n;
    double ns[C_NCASES];
    double x_sha[C_NCASES];
    double bytes_per_key;
    int ran[C_NCASES];
} runs[MAX_RUNS];
static int n_runs;

static const char *case_names[C_NCASES] = {
    [C_SHA1] = "(a) SHA-256 of a 58-byte key (OpenSSL EVP, context reused)",
    [C_HOT1] = "(h) **verify, cache-hot** (1k-key working set)",
    [C_UNI1] = "(u) **verify, uniform over all N** (64K-slot cache)",
    [C_MISS1] = "(m) **verify, every call a cache miss** (store path)",
    [C_JOIN1] = "(j) store: key + user in one JOIN (kw_store_pkey_auth_by_hash)",
    [C_TWO1] = "(t) store: key, then user (two statements, the old miss path)",
    [C_KHASH] = "(a') kw_key_hash: SHA-256 + \"sha256$\" hex",
    [C_CLASSIFY] = "(b) kw_key_classify (prefix, base62, CRC32)",
    [C_BYHASH] = "(t1) part: kw_store_pkey_by_hash",
    [C_USERGET] = "(t2) part: kw_store_user_get",
    [C_SCOPES1] = "(c3) kw_principal_load_scopes (JSON parse)",
    [C_BAD] = "(d) verify, bad checksum (no I/O)",
    [C_ABSENT] = "(e) verify, valid format, not stored",
    [C_SHAT] = "(a) SHA-256, scaling",
    [C_HOTT] = "(h) verify cache-hot, scaling",
};

static int bench_n(const char *backend, const char *pg_admin, size_t n, double seconds, int threads)
{
    int pg = strcmp(backend, "postgresql") == 0;
    struct bench b;
    memset(&b, 0, sizeof b);
    b.n = n;
    b.keys = calloc(n, sizeof *b.keys);
    b.hashes = calloc(n, sizeof *b.hashes);
    b.bad = calloc(SAMPLE, sizeof *b.bad);
    b.absent = calloc(SAMPLE, sizeof *b.absent);
    if (!b.keys || !b.hashes || !b.bad || !b.absent) die("out of memory", KW_ERR_NOMEM);

    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX / 2], path[PATH_MAX / 2 + 16], url[PATH_MAX + 1024], dbname[64];
    double insert_s, bytes_per_key, db_bytes;
    if (pg) {
        snprintf(dbname, sizeof dbname, "kw_bench_%ld_%zu", (long)getpid(), n);
        fill_pg(&b, pg_admin, dbname, url, sizeof url, &insert_s);
        bytes_per_key = pg_bytes(url, "SELECT pg_total_relation_size('personal_api_keys')") / (double)n;
        db_bytes = pg_bytes(url, "SELECT pg_database_size(current_database())");
    } else {
        snprintf(dir, sizeof dir, "%s/kw_bench_verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) die("mkdtemp", 0);
        snprintf(path, sizeof path, "%s/verify.db", dir);
        snprintf(url, sizeof url, "%s", path);
        fill_store(&b, path, &insert_s);
        struct stat st;
        if (stat(path, &st)) die("stat", 0);
        db_bytes = (double)st.st_size;
        bytes_per_key = db_bytes / (double)n;
    }
    make_samples(&b);

    int rc;
    if ((rc = kw_store_open(url, &b.store))) die("kw_store_open", rc);
    if ((rc = kw_verifier_new(b.store, &b.verifier))) die("kw_verifier_new", rc);
    if ((rc = kw_verifier_new(b.store, &b.miss_verifier))) die("kw_verifier_new", rc);
    /* Fill the cache as a server's traffic would have (uniform case). */
    {
        kw_principal p;
        size_t warm = n < 200000 ? n : 200000;
        for (size_t i = 0; i < warm; i++) op_verify(&b, i, &p);
    }

    printf("\n### %s, N = %zu keys (%lld users; %d interleaved rounds of %.2f s per case, "
           "medians)\n\n",
           pg ? "PostgreSQL" : "SQLite", n, (long long)b.n_users, ROUNDS, seconds / ROUNDS);
    if (pg)
        printf("Store: key table + its indexes + TOAST %.1f MB, **%.0f bytes per key** "
               "(pg_total_relation_size('personal_api_keys') / N); whole database %.1f MB "
               "(%.0f bytes per key, catalogs, users and memberships included); COPY at "
               "%.0f keys/s.\n\n",
               bytes_per_key * (double)n / 1e6, bytes_per_key, db_bytes / 1e6, db_bytes / (double)n,
               (double)n / insert_s);
    else
        printf("Store: %.1f MB, **%.0f bytes per key** (file size / N, users and memberships "
               "included); inserted in one transaction at %.0f keys/s.\n\n",
               db_bytes / 1e6, bytes_per_key, (double)n / insert_s);
    printf("| case | threads | ops/s | ns/op | × sha256 |\n|---|---:|---:|---:|---:|\n");

    struct {
        op_fn fn;
        int threads;
    } cases[C_NCASES] = {
        [C_SHA1] = {op_sha256, 1},       [C_HOT1] = {op_verify_hot, 1},  [C_UNI1] = {op_verify, 1},
        [C_MISS1] = {op_verify_miss, 1}, [C_JOIN1] = {op_auth_by_hash, 1}, [C_TWO1] = {op_two_queries, 1},
        [C_KHASH] = {op_key_hash, 1},    [C_CLASSIFY] = {op_classify, 1}, [C_BYHASH] = {op_by_hash, 1},
        [C_USERGET] = {op_user_get, 1},  [C_SCOPES1] = {op_load_scopes, 1}, [C_BAD] = {op_verify_bad, 1},
        [C_ABSENT] = {op_verify_absent, 1}, [C_SHAT] = {op_sha256, threads}, [C_HOTT] = {op_verify_hot, threads},
    };
    static double ops[C_NCASES][ROUNDS], ns[C_NCASES][ROUNDS];
    int failed = 0, run[C_NCASES];
    for (int c = 0; c < C_NCASES; c++)
        run[c] = c == C_SHA1 || !only || (cases[c].threads == 1 && strstr(case_names[c], only));
    for (int r = 0; r < ROUNDS; r++)
        for (int c = 0; c < C_NCASES; c++) {
            if (!run[c]) continue;
            struct result res;
            int f = run_case(&b, cases[c].fn, cases[c].threads, seconds / ROUNDS, &res);
            if (f) fprintf(stderr, "kw_bench_verify: unexpected result in %s\n", case_names[c]);
            failed |= f;
            ops[c][r] = res.ops_per_s;
            ns[c][r] = res.ns_per_op;
        }
    static const int order[C_NCASES] = {C_SHA1, C_KHASH, C_CLASSIFY, C_HOT1, C_UNI1, C_MISS1, C_JOIN1, C_TWO1,
                                      C_BYHASH, C_USERGET, C_SCOPES1, C_BAD, C_ABSENT, C_SHAT, C_HOTT};
    int slot = n_runs < MAX_RUNS ? n_runs++ : MAX_RUNS - 1;
    runs[slot].backend = pg ? "PostgreSQL" : "SQLite";
    runs[slot].n = n;
    runs[slot].bytes_per_key = bytes_per_key;
    for (int i = 0; i < C_NCASES; i++) {
        int c = order[i];
        runs[slot].ran[c] = run[c];
        if (!run[c]) continue;
        runs[slot].ns[c] = median(ns[c], ROUNDS);
        runs[slot].x_sha[c] = median_ratio(ns[c], ns[C_SHA1]);
        printf("| %s | %d | %.0f | %.0f | %.1f× |\n", case_names[c], cases[c].threads,
               median(ops[c], ROUNDS), runs[slot].ns[c], runs[slot].x_sha[c]);
    }
    if (only) goto out;
    double hot = median(ns[C_HOT1], ROUNDS), uni = median(ns[C_UNI1], ROUNDS),
           miss = median(ns[C_MISS1], ROUNDS);
    double hit = miss > hot ? (miss - uni) / (miss - hot) : 0;
    printf("\nverify hot / sha256 = **%.1f×** (goal ≤ 3×: %s); miss / sha256 = %.1f×.  Uniform "
           "access hit rate ≈ %.0f%% (from the times: (m − u) / (m − h)).  JOIN vs two "
           "statements: **%.2f×** the time.  Scaling 1 → %d threads (ops/s): verify hot **%.2f×**, "
           "sha256 %.2f×.\n",
           median_ratio(ns[C_HOT1], ns[C_SHA1]), median_ratio(ns[C_HOT1], ns[C_SHA1]) <= 3 ? "met" : "NOT met",
           median_ratio(ns[C_MISS1], ns[C_SHA1]), hit < 0 ? 0 : hit > 1 ? 100 : hit * 100,
           median_ratio(ns[C_JOIN1], ns[C_TWO1]), threads, median_ratio(ops[C_HOTT], ops[C_HOT1]),
           median_ratio(ops[C_SHAT], ops[C_SHA1]));
out:
    fflush(stdout);
    kw_verifier_free(b.verifier);
    kw_verifier_free(b.miss_verifier);
    kw_store_close(b.store);
    if (pg) {
        drop_pg(pg_admin, dbname);
    } else {
        remove_db(path);
        rmdir(dir);
    }
    free(b.keys);
    free(b.hashes);
    free(b.bad);
    free(b.absent);
    return failed;
}

/* One table of ns/op across N per backend, with the ratios to N = first. */
static void summary(void)
{
    if (n_runs < 2) return;
    printf("\n### Across N (ns/op medians; ratio to the smallest N of the same backend)\n");
    const char *backends[] = {"SQLite", "PostgreSQL"};
    static const int rows[] = {C_HOT1, C_UNI1, C_MISS1, C_JOIN1, C_TWO1, C_ABSENT, C_BAD};
    for (int bk = 0; bk < 2; bk++) {
        int idx[MAX_RUNS], k = 0;
        for (int i = 0; i < n_runs; i++)
            if (strcmp(runs[i].backend, backends[bk]) == 0) idx[k++] = i;
        if (k == 0) continue;
        printf("\n| %s |", backends[bk]);
        for (int j = 0; j < k; j++) printf(" N = %zu |", runs[idx[j]].n);
        for (int j = 1; j < k; j++) printf(" %zu / %zu |", runs[idx[j]].n, runs[idx[0]].n);
        printf("\n|---|");
        for (int j = 0; j < 2 * k - 1; j++) printf("---:|");
        printf("\n");
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            int c = rows[r];
            if (!runs[idx[0]].ran[c]) continue;
            printf("| %s |", case_names[c]);
            for (int j = 0; j < k; j++) printf(" %.0f (%.1f× sha) |", runs[idx[j]].ns[c], runs[idx[j]].x_sha[c]);
            for (int j = 1; j < k; j++)
                printf(" **%.2f×** |", runs[idx[0]].ns[c] > 0 ? runs[idx[j]].ns[c] / runs[idx[0]].ns[c] : 0);
            printf("\n");
        }
        printf("| bytes per key |");
        for (int j = 0; j < k; j++) printf(" %.0f |", runs[idx[j]].bytes_per_key);
        for (int j = 1; j < k; j++) printf(" %.2f× |", runs[idx[j]].bytes_per_key / runs[idx[0]].bytes_per_key);
        printf("\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    int threads = 2;
    size_t ns[16];
    int n_ns = 0;
    const char *backend = NULL, *pg_url = getenv("BENCH_PG_URL");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc)
            pg_url = argv[++i];
        else if (argv[i][0] >= '1' && argv[i][0] <= '9' && n_ns < 16)
            ns[n_ns++] = (size_t)strtoull(argv[i], NULL, 10);
        else {
            fprintf(stderr, "usage: kw_bench_verify [--seconds S] [--threads T] [--only TEXT]\n"
                            "                       [--backend sqlite|postgresql|both] [--pg URL] [N ...]\n"
                            "  default N: 1000 100000 (and 1000000 with BENCH_FULL=1)\n"
                            "  PostgreSQL: --pg URL or $BENCH_PG_URL (a database the bench may\n"
                            "  CREATE DATABASE / DROP DATABASE next to)\n");
            return 2;
        }
    }
    if (pg_url && !*pg_url) pg_url = NULL;
    if (!backend) backend = pg_url ? "both" : "sqlite";
    int do_sqlite = strcmp(backend, "sqlite") == 0 || strcmp(backend, "both") == 0;
    int do_pg = strcmp(backend, "postgresql") == 0 || strcmp(backend, "both") == 0;
    if (seconds <= 0 || threads < 1 || threads > 64 || (!do_sqlite && !do_pg) || (do_pg && !pg_url)) {
        fprintf(stderr, "kw_bench_verify: --seconds must be > 0, --threads 1..64, --backend "
                        "sqlite|postgresql|both (PostgreSQL needs --pg URL or $BENCH_PG_URL)\n");
        return 2;
    }
    if (!n_ns) {
        ns[n_ns++] = 1000;
        ns[n_ns++] = 100000;
        const char *full = getenv("BENCH_FULL");
        if (full && strcmp(full, "1") == 0) ns[n_ns++] = 1000000;
    }
    printf("## Verification micro-benchmark (kw_bench_verify)\n");
    int failed = 0;
    if (do_sqlite)
        for (int i = 0; i < n_ns; i++) failed |= bench_n("sqlite", NULL, ns[i], seconds, threads);
    if (do_pg)
        for (int i = 0; i < n_ns; i++) failed |= bench_n("postgresql", pg_url, ns[i], seconds, threads);
    summary();
    if (failed) fprintf(stderr, "kw_bench_verify: some operations gave unexpected results\n");
    return failed ? 1 : 0;
}
