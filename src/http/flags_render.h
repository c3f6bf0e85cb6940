/* flags_render.h — the /flags?v=2 answer from pre-rendered pieces (see
 * flags_render.c), and the per-flag detail as jansson builds it. */
#ifndef KW_HTTP_FLAGS_RENDER_H
#define KW_HTTP_FLAGS_RENDER_H

#include <jansson.h>
#include <stddef.h>

#include "keyward/flagcache.h"
#include "keyward/flags.h"

/* The whole /flags?v=2 body for one caller into *out (malloc'd, free()
 * it), or KW_ERR_NOMEM. */
int kw_flags_render_v2(const kw_flagset *set, const kw_flag_context *ctx, const char *request_id,
                       long long evaluated_at, char **out, size_t *out_len);

/* One flag's v2 detail {key, enabled, variant, reason, metadata}. */
json_t *kw_flags_detail_v2(const json_t *def, const char *key, const kw_flag_result *r);
/* A payload as PostHog serves it: a JSON-encoded string (a copy). */
json_t *kw_flags_payload_json(const json_t *payload);

#endif
