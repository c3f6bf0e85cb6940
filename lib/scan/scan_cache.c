/* scan_cache.c — compiled rule databases kept between runs.
 *
 * Compiling every rule into one Hyperscan database takes ~80 ms, about as
 * long as scanning 50 MB, and a pre-commit hook pays it on every commit.
 * The compiled database is written to a cache directory under a name that
 * is a SHA-256 of everything that decides it (Hyperscan's version, this
 * CPU's platform, and every pattern with its flags and id), and the next
 * run with the same rules loads it instead of compiling (~1 ms).
 *
 * The cache is trusted as much as the user's own files, because it is
 * one: a directory owned by the effective user and writable by nobody
 * else, holding regular files owned by that user and writable by nobody
 * else, opened without following links.  Anything else is ignored (and the
 * rules compiled as usual); a file Hyperscan refuses to load (another
 * version, a torn write, flipped bytes: it checks a CRC) is replaced.  At
 * most CACHE_KEEP databases are kept, the oldest removed first. */
#include "scan/scan_internal.h"

#ifdef KW_HAVE_HYPERSCAN

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyward/keyward.h"
#include "util/digest.h"

#define CACHE_MAX_BYTES ((off_t)64 << 20)
#define CACHE_KEEP 8
#define CACHE_PREFIX "hs-"
#define CACHE_SUFFIX ".db"

/* Owned by us and writable by nobody else. */
static int trusted(const struct stat *st)
{
    return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* The cache directory, opened; -1 when it is missing or not trusted.
 * With `create`, missing directories of the path are made (0700). */
static int open_dir(const char *dir, int create)
{
    if (!dir || !*dir) return -1;
    if (create) {
        char path[4096];
        size_t len = strlen(dir);
        if (len >= sizeof path) return -1;
        memcpy(path, dir, len + 1);
        for (char *p = path + 1; *p; p++)
            if (*p == '/') {
                *p = '\0';
                if (mkdir(path, 0700) && errno != EEXIST) return -1;
                *p = '/';
            }
        if (mkdir(path, 0700) && errno != EEXIST) return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) || !S_ISDIR(st.st_mode) || !trusted(&st))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

void kw_scan_cache_key(const char *const *patterns, const unsigned *flags, const unsigned *ids,
                       unsigned n, char out[KW_SCAN_CACHE_NAME_MAX])
{
    /* Length-prefixed fields, so no two inputs hash the same text. */
    size_t cap = 256, len = 0;
    for (unsigned i = 0; i < n; i++) cap += strlen(patterns[i]) + 32;
    char *text = malloc(cap);
    out[0] = '\0';
    if (!text) return;
    hs_platform_info_t platform;
    memset(&platform, 0, sizeof platform);
    hs_populate_platform(&platform);
    len += (size_t)snprintf(text + len, cap - len, "keyward-hs-1|%s|%llx|%llx|%u|", hs_version(),
                            (unsigned long long)platform.cpu_features,
                            (unsigned long long)platform.tune, n);
    for (unsigned i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(text + len, cap - len, "%zu:%s|%u|%u|", strlen(patterns[i]),
                                patterns[i], flags[i], ids[i]);
    unsigned char md[32];
    if (len < cap && kw_digest(KW_DIGEST_SHA256, text, len, md) == KW_OK) {
        static const char HEX[] = "0123456789abcdef";
        char *o = out + snprintf(out, KW_SCAN_CACHE_NAME_MAX, CACHE_PREFIX);
        for (int i = 0; i < 32; i++) {
            *o++ = HEX[md[i] >> 4];
            *o++ = HEX[md[i] & 15];
        }
        strcpy(o, CACHE_SUFFIX);
    }
    free(text);
}

hs_database_t *kw_scan_cache_load(const char *dir, const char *name)
{
    if (!*name) return NULL;
    int dfd = open_dir(dir, 0);
    if (dfd < 0) return NULL;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (fd < 0) return NULL;
    struct stat st;
    char *bytes = NULL;
    hs_database_t *db = NULL;
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) && trusted(&st) && st.st_size > 0 &&
        st.st_size <= CACHE_MAX_BYTES && (bytes = malloc((size_t)st.st_size))) {
        size_t got = 0;
        ssize_t r = 1;
        while (got < (size_t)st.st_size && (r = read(fd, bytes + got, (size_t)st.st_size - got)) > 0)
            got += (size_t)r;
        if (got == (size_t)st.st_size && hs_deserialize_database(bytes, got, &db) != HS_SUCCESS)
            db = NULL;
    }
    free(bytes);
    close(fd);
    return db;
}

/* Removes the oldest cached databases beyond CACHE_KEEP (other rule sets:
 * a user's rules files, older versions). */
static void prune(int dfd, const char *keep)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct {
        char name[KW_SCAN_CACHE_NAME_MAX];
        time_t mtime;
    } files[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < sizeof files / sizeof files[0]) {
        size_t len = strlen(e->d_name);
        struct stat st;
        if (len >= KW_SCAN_CACHE_NAME_MAX || strncmp(e->d_name, CACHE_PREFIX, 3) ||
            len < 4 || strcmp(e->d_name + len - 3, CACHE_SUFFIX) || !strcmp(e->d_name, keep) ||
            fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
            continue;
        memcpy(files[n].name, e->d_name, len + 1);
        files[n++].mtime = st.st_mtime;
    }
    while (n + 1 > CACHE_KEEP) {  /* + 1: the one just written */
        size_t oldest = 0;
        for (size_t i = 1; i < n; i++)
            if (files[i].mtime < files[oldest].mtime) oldest = i;
        unlinkat(dfd, files[oldest].name, 0);
        files[oldest] = files[--n];
    }
    closedir(d);
}

void kw_scan_cache_store(const char *dir, const char *name, const hs_database_t *db)
{
    if (!*name) return;
    int dfd = open_dir(dir, 1);
    if (dfd < 0) return;
    char *bytes = NULL;
    size_t len = 0;
    char tmp[KW_SCAN_CACHE_NAME_MAX + 32];
    snprintf(tmp, sizeof tmp, ".%s.%ld.tmp", name, (long)getpid());
    int fd = -1, ok = 0;
    if (hs_serialize_database(db, &bytes, &len) == HS_SUCCESS &&
        (fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0) {
        size_t put = 0;
        ssize_t w = 1;
        while (put < len && (w = write(fd, bytes + put, len - put)) > 0) put += (size_t)w;
        ok = put == len;
    }
    if (fd >= 0) {
        ok = !close(fd) && ok;
        /* Renamed into place whole, so a reader never sees half a file. */
        if (!ok || renameat(dfd, tmp, dfd, name)) unlinkat(dfd, tmp, 0);
        else prune(dfd, name);
    }
    free(bytes);  /* hs_serialize_database allocates with malloc */
    close(dfd);
}

#endif
