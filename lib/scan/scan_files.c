/* scan_files.c — scan a list of files on every core.
 *
 * A small pthread pool: each worker owns a scratch (hs_clone_scratch under
 * the hood) and a read buffer that grows to the largest file it has seen,
 * and takes the next file index from an atomic counter, so big and small
 * files balance themselves without a queue.  Files are read with read(2)
 * rather than mmap(2): most source files are small, where a page-cache copy
 * is cheaper than setting up and tearing down a mapping, and a file
 * truncated under us cannot raise SIGBUS.  Findings are passed to the
 * caller under one lock, so the caller's callback needs no locking.
 *
 * Symlinks are never followed (O_NOFOLLOW; anything but a regular file is
 * skipped), so a link pointing out of the tree cannot be read. */
#include "scan/scan_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyward/keyward.h"

typedef struct pool {
    const kw_scan_engine *engine;
    const char *const *paths;
    size_t count;
    const kw_scan_files_opts *opts;
    atomic_size_t next;
    atomic_int stop;
    pthread_mutex_t lock;
    int error; /* first error, under lock */
} pool;

typedef struct worker {
    pool *pool;
    kw_scan_scratch *scratch;
    char *buf;
    size_t cap;
    size_t file_index;
} worker;

static void pool_fail(pool *p, int rc)
{
    pthread_mutex_lock(&p->lock);
    if (!p->error) p->error = rc;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->stop, 1);
}

static int on_finding(const kw_scan_finding *f, const char *data, void *ctx)
{
    worker *w = ctx;
    pool *p = w->pool;
    pthread_mutex_lock(&p->lock);
    int rc = p->opts->on_finding ? p->opts->on_finding(w->file_index, f, data, p->opts->ctx) : 0;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Reads the whole file into w->buf; returns its status. */
static kw_scan_file_status read_file(worker *w, const char *path, size_t *len_out)
{
    uint64_t max_size = w->pool->opts->max_size;
    kw_scan_file_status status = KW_SCAN_FILE_ERROR;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return errno == ELOOP ? KW_SCAN_FILE_SKIPPED : KW_SCAN_FILE_ERROR;
    struct stat st;
    if (fstat(fd, &st) != 0) goto cleanup;
    if (!S_ISREG(st.st_mode)) {
        status = KW_SCAN_FILE_SKIPPED;
        goto cleanup;
    }
    if (max_size && (uint64_t)st.st_size > max_size) {
        status = KW_SCAN_FILE_TOO_LARGE;
        goto cleanup;
    }
    size_t want = (size_t)st.st_size + 1; /* +1 to notice a file that grew */
    if (want > w->cap) {
        char *bigger = realloc(w->buf, want);
        if (!bigger) goto cleanup;
        w->buf = bigger;
        w->cap = want;
    }
    size_t len = 0;
    while (len < want) {
        ssize_t n = read(fd, w->buf + len, want - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto cleanup;
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len == want) len--; /* grew while reading: scan what stat promised */
    *len_out = len;
    status = kw_scan_looks_binary(w->buf, len) ? KW_SCAN_FILE_BINARY : KW_SCAN_FILE_SCANNED;
cleanup:
    close(fd);
    return status;
}

static void *work(void *arg)
{
    worker *w = arg;
    pool *p = w->pool;
    while (!atomic_load(&p->stop)) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->count) break;
        size_t len = 0;
        w->file_index = i;
        kw_scan_file_status status = read_file(w, p->paths[i], &len);
        if (status == KW_SCAN_FILE_SCANNED && len > 0) {
            int rc = kw_scan_buffer(p->engine, w->scratch, w->buf, len, p->opts->flags,
                                    on_finding, w);
            if (rc) {
                pool_fail(p, rc);
                break;
            }
        }
        if (p->opts->on_file) {
            pthread_mutex_lock(&p->lock);
            p->opts->on_file(i, status, p->opts->ctx);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

int kw_scan_files(const kw_scan_engine *engine, const char *const *paths, size_t count,
                  const kw_scan_files_opts *opts)
{
    pool p = {.engine = engine, .paths = paths, .count = count, .opts = opts};
    atomic_init(&p.next, 0);
    atomic_init(&p.stop, 0);
    pthread_mutex_init(&p.lock, NULL);
    unsigned n = opts->threads;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (n > 256) n = 256;
    if (n > count) n = count ? (unsigned)count : 1;
    worker *workers = calloc(n, sizeof *workers);
    pthread_t *threads = calloc(n, sizeof *threads);
    unsigned started = 0;
    int rc = KW_ERR_NOMEM;
    if (!workers || !threads) goto cleanup;
    for (unsigned i = 0; i < n; i++) {
        workers[i].pool = &p;
        if ((rc = kw_scan_scratch_new(engine, &workers[i].scratch))) goto cleanup;
    }
    /* worker 0 runs on the calling thread */
    for (unsigned i = 1; i < n; i++) {
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) break;
        started = i;
    }
    work(&workers[0]);
    rc = KW_OK;
cleanup:
    for (unsigned i = 1; i <= started; i++) pthread_join(threads[i], NULL);
    if (rc == KW_OK) rc = p.error;
    if (workers) {
        for (unsigned i = 0; i < n; i++) {
            kw_scan_scratch_free(workers[i].scratch);
            free(workers[i].buf);
        }
    }
    free(workers);
    free(threads);
    pthread_mutex_destroy(&p.lock);
    return rc;
}
