/* me_cache.c — GET /api/users/@me/ answered from memory.
 *
 * Scripts and SDKs call @me first and often (to learn who a key belongs
 * to), and building it reads the user, their organizations and projects
 * and serializes them: most of the cost of the request.  The answer
 * depends only on what the directory generation watches (users,
 * organizations, memberships, projects: kw_directory) and on the key's
 * own narrowing (scoped teams and organizations), so it is kept, per
 * request thread (no lock on a hit), as a ready response shared by every
 * request that asks again — a hit only queues it.
 *
 * An entry is used only while all of this holds: same server (directory),
 * same key id and user, same narrowing as the principal just verified, the
 * directory generation it was built at is still the last one read, and it
 * is younger than ME_TTL_US.  Verification and the policy run before the
 * handler as for every request, so a deleted, rolled-away or expired key,
 * or a deactivated user, is refused (401) before the cache is looked at.
 * Only personal keys are cached (a console session is not a key), and only
 * answers up to ME_MAX_BYTES.
 *
 * Entries are reference counted: the slot holds one reference, and every
 * request answered with an entry holds one until MHD is done with it, so
 * replacing a slot never frees bytes still being sent.  A thread's table
 * is freed when the thread ends (pthread key destructor). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

#define ME_SLOTS 256
#define ME_TTL_US ((int64_t)300 * 1000000)
#define ME_MAX_BYTES (64 * 1024)

struct me_entry {
    atomic_int refs;
    kw_http_ready *ready;
    size_t len;
    char text[];
};

struct me_slot {
    const kw_directory *directory;
    int64_t generation;
    int64_t built_at;
    int64_t user_id;
    uint64_t narrowing;
    char key_id[KW_ID_LEN + 1];
    struct me_entry *entry;
};

static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int table_key_ok;

static void entry_release(void *ctx)
{
    struct me_entry *e = ctx;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
    kw_http_ready_free(e->ready);
    free(e);
}

static void table_free(void *table)
{
    struct me_slot *slots = table;
    for (int i = 0; i < ME_SLOTS; i++)
        if (slots[i].entry) entry_release(slots[i].entry);
    free(slots);
}

static void table_key_make(void) { table_key_ok = pthread_key_create(&table_key, table_free) == 0; }

/* This thread's slots, made on first use; NULL without memory. */
static struct me_slot *table(void)
{
    pthread_once(&table_once, table_key_make);
    if (!table_key_ok) return NULL;
    struct me_slot *slots = pthread_getspecific(table_key);
    if (slots) return slots;
    slots = calloc(ME_SLOTS, sizeof *slots);
    if (slots && pthread_setspecific(table_key, slots)) {
        free(slots);
        slots = NULL;
    }
    return slots;
}

/* FNV-1a over the key's narrowing: the projects and organizations it is
 * limited to change which of them @me shows. */
static uint64_t narrowing_of(const kw_principal *p)
{
    uint64_t h = 1469598103934665603ULL;
#define MIX(byte) (h = (h ^ (uint8_t)(byte)) * 1099511628211ULL)
    for (int i = 0; i < 8; i++) MIX((uint64_t)(int64_t)p->n_scoped_teams >> (8 * i));
    for (int t = 0; t < p->n_scoped_teams; t++)
        for (int i = 0; i < 8; i++) MIX((uint64_t)p->scoped_teams[t] >> (8 * i));
    for (int i = 0; i < 8; i++) MIX((uint64_t)(int64_t)p->n_scoped_orgs >> (8 * i));
    for (int o = 0; o < p->n_scoped_orgs; o++) {
        for (const char *c = p->scoped_orgs[o]; *c; c++) MIX(*c);
        MIX(0);
    }
#undef MIX
    return h;
}

static int cacheable(const kw_http_req *req, const kw_http_resp *resp)
{
    const kw_principal *p = &req->principal;
    /* Nothing added a header before the handler: the ready response is
     * exactly the one that would be built. */
    return req->app->directory && p->kind == KW_KEY_PERSONAL && p->key_id[0] && !p->session &&
           resp->n_headers == 0;
}

static struct me_slot *slot_for(struct me_slot *slots, const char *key_id)
{
    uint32_t h = 2166136261u;
    for (const char *c = key_id; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    return &slots[h % ME_SLOTS];
}

/* Answers with the entry (one more reference, dropped when MHD is done). */
static void answer(kw_http_resp *resp, struct me_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    kw_resp_raw(resp, 200, "application/json", e->text, e->len, entry_release, e);
    resp->shared = e->ready;
}

int kw_me_cache_answer(kw_http_req *req, kw_http_resp *resp)
{
    if (!cacheable(req, resp)) return 0;
    struct me_slot *slots = table();
    if (!slots) return 0;
    const kw_principal *p = &req->principal;
    struct me_slot *s = slot_for(slots, p->key_id);
    if (!s->entry || s->directory != req->app->directory || s->user_id != p->user_id ||
        strcmp(s->key_id, p->key_id) != 0 ||
        s->generation != kw_directory_generation(req->app->directory))
        return 0;
    int64_t now = kw_now();
    if (now - s->built_at >= ME_TTL_US || now < s->built_at || s->narrowing != narrowing_of(p))
        return 0;
    answer(resp, s->entry);
    return 1;
}

int64_t kw_me_cache_generation(kw_http_req *req)
{
    kw_directory *d = req->app->directory;
    /* Read before the answer's rows: a write that commits after this
     * read moves the generation past the entry's, so at worst an entry
     * built from newer rows is discarded early — never one kept past a
     * write it does not show. */
    kw_directory_refresh(d);
    return kw_directory_generation(d);
}

void kw_me_cache_send(kw_http_req *req, kw_http_resp *resp, int64_t generation, json_t *me)
{
    struct me_slot *slots = cacheable(req, resp) ? table() : NULL;
    char *text = slots ? json_dumps(me, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    size_t len = text ? strlen(text) : 0;
    struct me_entry *e = text && len <= ME_MAX_BYTES ? malloc(sizeof *e + len + 1) : NULL;
    if (!e) {
        free(text);
        kw_resp_json(resp, 200, me);
        return;
    }
    json_decref(me);
    memcpy(e->text, text, len + 1);
    free(text);
    e->len = len;
    atomic_init(&e->refs, 1);
    /* The entry owns the bytes and outlives every use of the ready
     * response (each holds a reference): no release on it. */
    kw_http_resp ready;
    kw_http_resp_init(&ready);
    kw_resp_raw(&ready, 200, "application/json", e->text, len, NULL, NULL);
    e->ready = kw_http_ready_new(&ready);
    const kw_principal *p = &req->principal;
    struct me_slot *s = slot_for(slots, p->key_id);
    if (e->ready) {
        if (s->entry) entry_release(s->entry);
        s->entry = e;  /* the slot's reference */
        s->directory = req->app->directory;
        s->generation = generation;
        s->built_at = kw_now();
        s->user_id = p->user_id;
        s->narrowing = narrowing_of(p);
        memcpy(s->key_id, p->key_id, sizeof s->key_id);
        answer(resp, e);
        return;
    }
    /* No ready response: send the bytes once, without keeping them. */
    kw_resp_raw(resp, 200, "application/json", e->text, len, entry_release, e);
}
