/* verify_bench.c — kw_bench_verify: what one personal-key verification costs,
 * in process, against a real SQLite store of N keys.
 *
 * For each N it builds a fresh store in a temp directory (one organization,
 * one user per 10 keys — the per-user limit — every key scoped
 * ["feature_flag:read"] and marked used "now", so the run measures the
 * steady state where no last_used_at write is pending), then times, in 5
 * interleaved rounds (medians reported; see ROUNDS):
 *
 *   (a) SHA-256 of a 58-byte key (OpenSSL one-shot SHA256): the floor
 *   (b) kw_key_classify (prefix, length, alphabet, CRC32 checksum)
 *   (c) kw_verify_personal of random existing keys, and its parts:
 *       kw_store_pkey_by_hash, kw_store_user_get, kw_principal_load_scopes
 *   (d) kw_verify_personal of bad-checksum keys (must not touch the store)
 *   (e) kw_verify_personal of valid-format keys that are not stored
 *
 * and (a) and (c) again on 2 threads, to show the hot path takes no global
 * lock (each thread has its own SQLite connection).  It prints Markdown:
 * ops/s, ns/op, the ratio to (a), and the database size per key.
 *
 * Times are for comparison within one run on one machine, not absolutes.
 *
 *   kw_bench_verify [--seconds S] [--threads T] [--only TEXT] [N ...]
 *
 * Default N: 1000 and 100000; with BENCH_FULL=1 also 1000000.  S (default
 * 1) is the time per case, split over the rounds; T (default 2) the thread count of the scaling
 * rows; --only runs just the cases whose name contains TEXT (for a
 * profiler: perf record kw_bench_verify --only kw_verify_personal,). */
#include <errno.h>
#include <limits.h>
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

typedef char key_text[KW_KEY_LEN + 1];
typedef char hash_text[KW_HASH_LEN + 1];

struct bench {
    kw_store *store;
    kw_verifier *verifier;
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

static int op_sha256(struct bench *b, uint64_t r, void *scratch)
{
    (void)scratch;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)b->keys[r % b->n], KW_KEY_LEN, d);
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

static int bench_n(size_t n, double seconds, int threads)
{
    struct bench b;
    memset(&b, 0, sizeof b);
    b.n = n;
    b.keys = calloc(n, sizeof *b.keys);
    b.hashes = calloc(n, sizeof *b.hashes);
    b.bad = calloc(SAMPLE, sizeof *b.bad);
    b.absent = calloc(SAMPLE, sizeof *b.absent);
    if (!b.keys || !b.hashes || !b.bad || !b.absent) die("out of memory", KW_ERR_NOMEM);

    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX / 2], path[PATH_MAX / 2 + 16];
    snprintf(dir, sizeof dir, "%s/kw_bench_verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) die("mkdtemp", 0);
    snprintf(path, sizeof path, "%s/verify.db", dir);

    double insert_s;
    fill_store(&b, path, &insert_s);
    struct stat st;
    if (stat(path, &st)) die("stat", 0);
    make_samples(&b);

    int rc;
    if ((rc = kw_store_open(path, &b.store))) die("kw_store_open", rc);
    if ((rc = kw_verifier_new(b.store, &b.verifier))) die("kw_verifier_new", rc);

    printf("\n### N = %zu keys (%lld users, SQLite; %d interleaved rounds of %.2f s per case, "
           "medians)\n\n",
           n, (long long)b.n_users, ROUNDS, seconds / ROUNDS);
    printf("Store: %.1f MB, **%.0f bytes per key** (file size / N, users and memberships "
           "included); inserted in one transaction at %.0f keys/s.\n\n",
           (double)st.st_size / 1e6, (double)st.st_size / (double)n, (double)n / insert_s);
    printf("| case | threads | ops/s | ns/op | × sha256 |\n|---|---:|---:|---:|---:|\n");

    enum { SHA1, VER1, SHAT = 9, VERT, NCASES };
    struct {
        const char *name;
        op_fn fn;
        int threads;
    } cases[NCASES] = {
        {"(a) SHA-256 of a 58-byte key (OpenSSL)", op_sha256, 1},
        {"(c) **kw_verify_personal, random existing key**", op_verify, 1},
        {"(a') kw_key_hash: SHA-256 + \"sha256$\" hex", op_key_hash, 1},
        {"(b) kw_key_classify (prefix, base62, CRC32)", op_classify, 1},
        {"(c1) part: kw_store_pkey_by_hash (index probe + row copy)", op_by_hash, 1},
        {"(c2) part: kw_store_user_get (active check)", op_user_get, 1},
        {"(c3) part: kw_principal_load_scopes (JSON parse)", op_load_scopes, 1},
        {"(d) kw_verify_personal, bad checksum (no I/O)", op_verify_bad, 1},
        {"(e) kw_verify_personal, valid format, not stored", op_verify_absent, 1},
        {"(a) SHA-256, scaling", op_sha256, threads},
        {"(c) kw_verify_personal, scaling", op_verify, threads},
    };
    static double ops[NCASES][ROUNDS], ns[NCASES][ROUNDS];
    int failed = 0, run[NCASES];
    for (int c = 0; c < NCASES; c++)
        run[c] = c == SHA1 || !only || (cases[c].threads == 1 && strstr(cases[c].name, only));
    for (int r = 0; r < ROUNDS; r++)
        for (int c = 0; c < NCASES; c++) {
            if (!run[c]) continue;
            struct result res;
            int f = run_case(&b, cases[c].fn, cases[c].threads, seconds / ROUNDS, &res);
            if (f) fprintf(stderr, "kw_bench_verify: unexpected result in %s\n", cases[c].name);
            failed |= f;
            ops[c][r] = res.ops_per_s;
            ns[c][r] = res.ns_per_op;
        }
    static const int order[NCASES] = {0, 2, 3, 1, 4, 5, 6, 7, 8, 9, 10}; /* (a) … (e) */
    for (int i = 0; i < NCASES; i++) {
        int c = order[i];
        if (run[c])
            printf("| %s | %d | %.0f | %.0f | %.1f× |\n", cases[c].name, cases[c].threads,
                   median(ops[c], ROUNDS), median(ns[c], ROUNDS), median_ratio(ns[c], ns[SHA1]));
    }
    if (only) goto out;
    double ratio = median_ratio(ns[VER1], ns[SHA1]);
    printf("\nverify / sha256 = **%.1f×** (goal ≤ 3×: %s).  Scaling 1 → %d threads (ops/s): "
           "verify **%.2f×**, sha256 %.2f× (what this machine gave a lock-free loop at that "
           "moment).\n",
           ratio, ratio <= 3 ? "met" : "NOT met", threads, median_ratio(ops[VERT], ops[VER1]),
           median_ratio(ops[SHAT], ops[SHA1]));
out:
    fflush(stdout);
    kw_verifier_free(b.verifier);
    kw_store_close(b.store);
    remove_db(path);
    rmdir(dir);
    free(b.keys);
    free(b.hashes);
    free(b.bad);
    free(b.absent);
    return failed;
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    int threads = 2;
    size_t ns[16];
    int n_ns = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (argv[i][0] >= '1' && argv[i][0] <= '9' && n_ns < 16)
            ns[n_ns++] = (size_t)strtoull(argv[i], NULL, 10);
        else {
            fprintf(stderr, "usage: kw_bench_verify [--seconds S] [--threads T] [--only TEXT] [N ...]\n"
                            "  default N: 1000 100000 (and 1000000 with BENCH_FULL=1)\n");
            return 2;
        }
    }
    if (seconds <= 0 || threads < 1 || threads > 64) {
        fprintf(stderr, "kw_bench_verify: --seconds must be > 0, --threads 1..64\n");
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
    for (int i = 0; i < n_ns; i++) failed |= bench_n(ns[i], seconds, threads);
    if (failed) fprintf(stderr, "kw_bench_verify: some operations gave unexpected results\n");
    return failed ? 1 : 0;
}
