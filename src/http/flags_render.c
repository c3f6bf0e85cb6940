/* flags_render.c — the /flags?v=2 answer, assembled from pieces rendered
 * once per version of a project's flags.
 *
 * /flags is called on every page load by posthog-js and by every server
 * SDK without local evaluation, and its answer is mostly constant: of a
 * flag's detail only `enabled`, `variant`, `reason` and `payload` depend on
 * the caller, and even those take one of a few values the flag defines.
 * Building the answer as a jansson tree and serializing it cost ~3× the
 * evaluation itself (an object, a pack and a dump per flag, per request).
 * So jansson serializes each flag's constant parts and each of its
 * possible variants and payloads once, when the set is first evaluated,
 * and a request only copies pieces: every byte that came from a user
 * (keys, names, variants, payloads) was escaped by jansson.  What is
 * written here directly is fixed ASCII (reason codes and descriptions,
 * literals, integers).
 *
 * The pieces live in the set's evaluation slot (flagcache.h), freed with
 * the set.  A result the pieces cannot express (a variant or payload not
 * among the flag's own) falls back to rendering that flag's detail with
 * jansson, so the answer is the same either way. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/flags_render.h"
#include "keyward/keyward.h"
#include "keyward/strbuf.h"

#define ANSWER_LIMIT (64u << 20)  /* far above 100 flags' worth */

struct text {
    char *s;
    size_t len;
};

struct variant_text {
    const char *key;  /* the string inside the flag's JSON it stands for */
    struct text json;
};

struct payload_text {
    const json_t *payload;  /* the value inside the flag's "payloads" */
    struct text json;
};

struct flag_pieces {
    const char *key;     /* NULL: the flag has no usable key (skipped) */
    struct text head;    /* KEY:{"key":KEY,"enabled": */
    struct text meta;    /* ,"metadata":{"id":…,"version":…,"description":…,"payload": */
    size_t n_variants, n_payloads;
    struct variant_text *variants;
    struct payload_text *payloads;
};

struct pieces {
    kw_flagset_attachment base;  /* first */
    size_t n;
    struct flag_pieces *flags;
    size_t answer_bytes;  /* at least the longest /flags?v=2 answer from these pieces */
};

static void text_free(struct text *t) { free(t->s); }

static void pieces_free(kw_flagset_attachment *a)
{
    struct pieces *p = (struct pieces *)a;
    for (size_t i = 0; i < p->n; i++) {
        struct flag_pieces *f = &p->flags[i];
        text_free(&f->head);
        text_free(&f->meta);
        for (size_t j = 0; j < f->n_variants; j++) text_free(&f->variants[j].json);
        for (size_t j = 0; j < f->n_payloads; j++) text_free(&f->payloads[j].json);
        free(f->variants);
        free(f->payloads);
    }
    free(p->flags);
    free(p);
}

/* jansson's compact text of v (stolen). */
static int dump(json_t *v, struct text *out)
{
    out->s = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    out->len = out->s ? strlen(out->s) : 0;
    return out->s ? KW_OK : KW_ERR_NOMEM;
}

/* `before` + text + `after` as a new text (text freed). */
static int wrap(struct text *t, const char *before, const char *after)
{
    kw_strbuf sb;
    kw_sb_init_heap(&sb, ANSWER_LIMIT);
    kw_sb_append(&sb, before);
    kw_sb_appendn(&sb, t->s, t->len);
    kw_sb_append(&sb, after);
    text_free(t);
    if (!kw_sb_ok(&sb)) {
        kw_sb_free(&sb);
        t->s = NULL;
        return KW_ERR_NOMEM;
    }
    t->len = kw_sb_len(&sb);
    t->s = sb.data;  /* the builder's heap buffer is now this text's */
    return KW_OK;
}

json_t *kw_flags_payload_json(const json_t *payload)
{
    if (!payload || json_is_null(payload)) return json_null();
    if (json_is_string(payload)) return json_stringn(json_string_value(payload), json_string_length(payload));
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *s = text ? json_string(text) : json_null();
    free(text);
    return s ? s : json_null();
}

/* Every variant key the flag can answer with: its multivariate variants
 * and its conditions' overrides. */
static int flag_variants(const json_t *filters, struct flag_pieces *f)
{
    const json_t *variants = json_object_get(json_object_get(filters, "multivariate"), "variants");
    const json_t *groups = json_object_get(filters, "groups");
    size_t cap = json_array_size(variants) + json_array_size(groups), i;
    if (!cap) return KW_OK;
    if (!(f->variants = calloc(cap, sizeof *f->variants))) return KW_ERR_NOMEM;
    const json_t *v;
    json_array_foreach(variants, i, v) {
        const char *key = json_string_value(json_object_get(v, "key"));
        if (key) f->variants[f->n_variants++].key = key;
    }
    json_array_foreach(groups, i, v) {
        const char *key = json_string_value(json_object_get(v, "variant"));
        if (key) f->variants[f->n_variants++].key = key;
    }
    for (i = 0; i < f->n_variants; i++)
        if (dump(json_string(f->variants[i].key), &f->variants[i].json)) return KW_ERR_NOMEM;
    return KW_OK;
}

static int flag_payloads(const json_t *filters, struct flag_pieces *f)
{
    const json_t *payloads = json_object_get(filters, "payloads");
    size_t cap = json_object_size(payloads);
    if (!cap) return KW_OK;
    if (!(f->payloads = calloc(cap, sizeof *f->payloads))) return KW_ERR_NOMEM;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)payloads, name, v) {
        struct payload_text *p = &f->payloads[f->n_payloads++];
        p->payload = v;
        if (dump(kw_flags_payload_json(v), &p->json)) return KW_ERR_NOMEM;
    }
    return KW_OK;
}

static int flag_render(const json_t *def, struct flag_pieces *f)
{
    f->key = json_string_value(json_object_get(def, "key"));
    if (!f->key) return KW_OK;
    struct text key;
    if (dump(json_string(f->key), &key)) return KW_ERR_NOMEM;
    /* KEY:{"key":KEY,"enabled": */
    kw_strbuf sb;
    kw_sb_init_heap(&sb, ANSWER_LIMIT);
    kw_sb_appendn(&sb, key.s, key.len);
    kw_sb_append(&sb, ":{\"key\":");
    kw_sb_appendn(&sb, key.s, key.len);
    kw_sb_append(&sb, ",\"enabled\":");
    text_free(&key);
    if (!kw_sb_ok(&sb)) {
        kw_sb_free(&sb);
        return KW_ERR_NOMEM;
    }
    f->head.len = kw_sb_len(&sb);
    f->head.s = sb.data;

    const char *name = json_string_value(json_object_get(def, "name"));
    json_t *meta = json_pack("{s:I, s:I, s:o}", "id",
                             (json_int_t)json_integer_value(json_object_get(def, "id")), "version",
                             (json_int_t)json_integer_value(json_object_get(def, "version")),
                             "description", name && *name ? json_string(name) : json_null());
    if (dump(meta, &f->meta)) return KW_ERR_NOMEM;
    f->meta.s[--f->meta.len] = '\0';  /* the closing brace: "payload" follows */
    if (wrap(&f->meta, ",\"metadata\":", ",\"payload\":")) return KW_ERR_NOMEM;

    const json_t *filters = json_object_get(def, "filters");
    int rc = flag_variants(filters, f);
    return rc ? rc : flag_payloads(filters, f);
}

/* The longest a v2 answer built from p can be when no flag needs the
 * fallback: every flag with its longest variant and payload, and a reason
 * object of at most REASON_TEXT_MAX bytes (below), plus the frame.  The
 * answer's buffer is sized by it once instead of doubling per answer. */
#define REASON_TEXT_MAX 128
static size_t answer_bound(const struct pieces *p)
{
    size_t total = 256;  /* the frame: {"errorsWhileComputingFlags"…, requestId, evaluatedAt} */
    for (size_t i = 0; i < p->n; i++) {
        const struct flag_pieces *f = &p->flags[i];
        size_t variant = 4, payload = 4;  /* null */
        for (size_t j = 0; j < f->n_variants; j++)
            if (f->variants[j].json.len > variant) variant = f->variants[j].json.len;
        for (size_t j = 0; j < f->n_payloads; j++)
            if (f->payloads[j].json.len > payload) payload = f->payloads[j].json.len;
        total += f->head.len + f->meta.len + variant + payload + REASON_TEXT_MAX + 32;
    }
    return total;
}

static const struct pieces *pieces_of(const kw_flagset *set)
{
    kw_flagset_attachment *have = kw_flagset_attachment_get(set, KW_FLAGSET_EVALUATION);
    if (have) return (const struct pieces *)have;
    struct pieces *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->base.free_fn = pieces_free;
    size_t n = json_array_size(set->flags);
    if (n && !(p->flags = calloc(n, sizeof *p->flags))) {
        free(p);
        return NULL;
    }
    for (; p->n < n; p->n++)
        if (flag_render(json_array_get(set->flags, p->n), &p->flags[p->n])) {
            p->n++;
            pieces_free(&p->base);
            return NULL;
        }
    p->answer_bytes = answer_bound(p);
    have = kw_flagset_attach(set, KW_FLAGSET_EVALUATION, &p->base);
    if (have != &p->base) pieces_free(&p->base);
    return (const struct pieces *)have;
}

static const struct text *variant_text(const struct flag_pieces *f, const char *variant)
{
    for (size_t i = 0; i < f->n_variants; i++)
        if (f->variants[i].key == variant) return &f->variants[i].json;
    return NULL;
}

static const struct text *payload_text(const struct flag_pieces *f, const json_t *payload)
{
    for (size_t i = 0; i < f->n_payloads; i++)
        if (f->payloads[i].payload == payload) return &f->payloads[i].json;
    return NULL;
}

/* A flag's detail as jansson builds it: the fallback, and the reference
 * the pieces reproduce. */
json_t *kw_flags_detail_v2(const json_t *def, const char *key, const kw_flag_result *r)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    json_t *index = r->condition_index < 0 ? json_null() : json_integer(r->condition_index);
    return json_pack("{s:s, s:b, s:o, s:{s:s, s:o, s:s}, s:{s:I, s:I, s:o, s:o}}", "key", key,
                     "enabled", r->enabled, "variant",
                     r->variant ? json_string(r->variant) : json_null(), "reason", "code",
                     r->reason_code, "condition_index", index, "description", r->reason_description,
                     "metadata", "id", (json_int_t)json_integer_value(json_object_get(def, "id")),
                     "version", (json_int_t)json_integer_value(json_object_get(def, "version")),
                     "description", name && *name ? json_string(name) : json_null(), "payload",
                     r->enabled ? kw_flags_payload_json(r->payload) : json_null());
}

static void append_fallback(kw_strbuf *sb, const json_t *def, const char *key,
                            const kw_flag_result *r)
{
    struct text k, detail;
    if (dump(json_string(key), &k)) {
        sb->overflow = 1;  /* out of memory: the answer fails as a whole */
        return;
    }
    if (dump(kw_flags_detail_v2(def, key, r), &detail)) {
        text_free(&k);
        sb->overflow = 1;
        return;
    }
    kw_sb_appendn(sb, k.s, k.len);
    kw_sb_append(sb, ":");
    kw_sb_appendn(sb, detail.s, detail.len);
    text_free(&k);
    text_free(&detail);
}

/* The reason object, written out.  The reason's code and description are
 * keyward's own ASCII. */
static void write_reason(kw_strbuf *sb, const kw_flag_result *r)
{
    KW_SB_LIT(sb, ",\"reason\":{\"code\":\"");
    kw_sb_append(sb, r->reason_code);
    if (r->condition_index < 0) {
        KW_SB_LIT(sb, "\",\"condition_index\":null");
    } else {
        KW_SB_LIT(sb, "\",\"condition_index\":");
        kw_sb_int(sb, r->condition_index);
    }
    KW_SB_LIT(sb, ",\"description\":\"");
    kw_sb_append(sb, r->reason_description);
    KW_SB_LIT(sb, "\"}");
}

/* A reason object depends only on (reason, condition index): the common
 * ones are written once, at the first answer, and copied whole after. */
#define REASONS 5
#define REASON_INDEXES 32  /* condition indexes 0-31, and none (-1) */
static struct text reason_texts[REASONS][REASON_INDEXES + 1];
static char reason_bytes[REASONS][REASON_INDEXES + 1][REASON_TEXT_MAX];
static pthread_once_t reasons_once = PTHREAD_ONCE_INIT;

static void write_reasons(void)
{
    for (int reason = 0; reason < REASONS; reason++)
        for (int index = -1; index < REASON_INDEXES; index++) {
            kw_flag_result r;
            memset(&r, 0, sizeof r);
            kw_flag_result_set_reason(&r, (kw_flag_reason)reason, index);
            kw_strbuf sb;
            kw_sb_init(&sb, reason_bytes[reason][index + 1], REASON_TEXT_MAX);
            write_reason(&sb, &r);
            if (kw_sb_ok(&sb))  /* else left empty: written out each time */
                reason_texts[reason][index + 1] =
                    (struct text){reason_bytes[reason][index + 1], kw_sb_len(&sb)};
        }
}

static void append_reason(kw_strbuf *sb, const kw_flag_result *r)
{
    pthread_once(&reasons_once, write_reasons);
    const struct text *t = (unsigned)r->reason < REASONS && r->condition_index >= -1 &&
                                   r->condition_index < REASON_INDEXES
                               ? &reason_texts[r->reason][r->condition_index + 1]
                               : NULL;
    if (t && t->len) kw_sb_appendn(sb, t->s, t->len);
    else write_reason(sb, r);
}

static void append_detail(kw_strbuf *sb, const struct flag_pieces *f, const json_t *def,
                          const kw_flag_result *r)
{
    const struct text *variant = r->variant ? variant_text(f, r->variant) : NULL;
    const struct text *payload = r->enabled && r->payload ? payload_text(f, r->payload) : NULL;
    if ((r->variant && !variant) || (r->enabled && r->payload && !payload)) {
        append_fallback(sb, def, f->key, r);
        return;
    }
    kw_sb_appendn(sb, f->head.s, f->head.len);
    if (r->enabled) KW_SB_LIT(sb, "true,\"variant\":");
    else KW_SB_LIT(sb, "false,\"variant\":");
    if (variant) kw_sb_appendn(sb, variant->s, variant->len);
    else KW_SB_LIT(sb, "null");
    append_reason(sb, r);
    kw_sb_appendn(sb, f->meta.s, f->meta.len);
    if (payload) kw_sb_appendn(sb, payload->s, payload->len);
    else KW_SB_LIT(sb, "null");
    KW_SB_LIT(sb, "}}");
}

int kw_flags_render_v2(const kw_flagset *set, const kw_flag_context *ctx, const char *request_id,
                       long long evaluated_at, char **out, size_t *out_len)
{
    const struct pieces *p = pieces_of(set);
    if (!p) return KW_ERR_NOMEM;
    kw_strbuf sb;
    kw_sb_init_heap(&sb, ANSWER_LIMIT);
    kw_sb_reserve(&sb, p->answer_bytes < ANSWER_LIMIT / 2 ? p->answer_bytes : ANSWER_LIMIT / 2);
    kw_sb_append(&sb, "{\"errorsWhileComputingFlags\":false,\"flags\":{");
    int first = 1;
    for (size_t i = 0; i < p->n; i++) {
        const struct flag_pieces *f = &p->flags[i];
        const json_t *def = json_array_get(set->flags, i);
        kw_flag_result r;
        if (!f->key || i >= set->n_prepared ||
            kw_flag_evaluate_prepared(&set->prepared[i], ctx, &r) != KW_OK)
            continue;
        if (!first) KW_SB_LIT(&sb, ",");
        first = 0;
        append_detail(&sb, f, def, &r);
    }
    /* request_id is a UUID: hex and dashes. */
    KW_SB_LIT(&sb, "},\"requestId\":\"");
    kw_sb_append(&sb, request_id);
    KW_SB_LIT(&sb, "\",\"evaluatedAt\":");
    kw_sb_int(&sb, evaluated_at);
    KW_SB_LIT(&sb, "}");
    if (!kw_sb_ok(&sb)) {
        kw_sb_free(&sb);
        return KW_ERR_NOMEM;
    }
    *out_len = kw_sb_len(&sb);
    *out = sb.data;
    return KW_OK;
}
