/* cli_scan_report.c — printing findings (text, JSON, SARIF 2.1.0) and the
 * baseline that silences known ones.
 *
 * No format ever contains a secret: only its mask and the sha256
 * fingerprint.  The JSON output doubles as the baseline file format; a
 * finding is "known" when rule, fingerprint and file all match, so the same
 * secret pasted into a new file is reported again.  SARIF follows what
 * GitHub code scanning requires for an upload (tool.driver.rules, results
 * with ruleId/level/message/locations, partialFingerprints). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_scan.h"
#include "keyward/keyward.h"

void cli_report_text(FILE *out, const cli_findings *list)
{
    for (size_t i = 0; i < list->count; i++) {
        const cli_finding *f = &list->items[i];
        fprintf(out, "%s:%zu:%zu: %s %s %s", f->file, f->line, f->column, f->rule_id,
                kw_scan_confidence_name(f->confidence), f->mask);
        if (f->commit[0]) fprintf(out, " commit=%s", f->commit);
        if (f->live == 1) fputs(" (live)", out);
        fputc('\n', out);
    }
}

static json_t *finding_json(const cli_finding *f)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "file", json_string(f->file));
    json_object_set_new(o, "line", json_integer((json_int_t)f->line));
    json_object_set_new(o, "column", json_integer((json_int_t)f->column));
    json_object_set_new(o, "rule", json_string(f->rule_id));
    json_object_set_new(o, "confidence", json_string(kw_scan_confidence_name(f->confidence)));
    json_object_set_new(o, "mask", json_string(f->mask));
    json_object_set_new(o, "fingerprint", json_string(f->fingerprint));
    if (f->commit[0]) json_object_set_new(o, "commit", json_string(f->commit));
    if (f->live >= 0) json_object_set_new(o, "live", json_boolean(f->live));
    return o;
}

static int dump(FILE *out, json_t *doc)
{
    int rc = doc ? json_dumpf(doc, out, JSON_INDENT(2)) : -1;
    if (rc == 0) fputc('\n', out);
    json_decref(doc);
    return rc;
}

int cli_report_json(FILE *out, const cli_findings *list)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < list->count; i++)
        json_array_append_new(arr, finding_json(&list->items[i]));
    return dump(out, arr);
}

int cli_report_sarif(FILE *out, const cli_findings *list, const kw_scan_rules *rules)
{
    json_t *rule_list = json_array();
    for (size_t i = 0; i < kw_scan_rules_count(rules); i++) {
        json_array_append_new(
            rule_list,
            json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "id", kw_scan_rule_id(rules, i), "name",
                      kw_scan_rule_id(rules, i), "shortDescription", "text",
                      kw_scan_rule_description(rules, i), "defaultConfiguration", "level",
                      "error"));
    }
    json_t *results = json_array();
    for (size_t i = 0; i < list->count; i++) {
        const cli_finding *f = &list->items[i];
        char message[256];
        snprintf(message, sizeof message, "%s (%s confidence): %s%s%s", f->rule_description,
                 kw_scan_confidence_name(f->confidence), f->mask,
                 f->commit[0] ? " in commit " : "", f->commit);
        json_t *result = json_pack(
            "{s:s, s:s, s:{s:s}, s:[{s:{s:{s:s}, s:{s:I, s:I}}}], s:{s:s}}", "ruleId",
            f->rule_id, "level", f->confidence == KW_SCAN_HIGH ? "error" : "warning", "message",
            "text", message, "locations", "physicalLocation", "artifactLocation", "uri", f->file,
            "region", "startLine", (json_int_t)f->line, "startColumn", (json_int_t)f->column,
            "partialFingerprints", "keyward/v1", f->fingerprint);
        if (result && (f->commit[0] || f->live >= 0)) {
            json_t *props = json_object();
            if (f->commit[0]) json_object_set_new(props, "commit", json_string(f->commit));
            if (f->live >= 0) json_object_set_new(props, "live", json_boolean(f->live));
            json_object_set_new(result, "properties", props);
        }
        json_array_append_new(results, result);
    }
    json_t *doc = json_pack(
        "{s:s, s:s, s:[{s:{s:{s:s, s:s, s:s, s:o}}, s:o}]}", "$schema",
        "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs", "tool",
        "driver", "name", "keyward", "version", KW_VERSION, "informationUri",
        "https://github.com/keyward/keyward", "rules", rule_list, "results", results);
    return dump(out, doc);
}

/* One baseline entry: borrowed from the parsed document. */
typedef struct known_finding {
    const char *fingerprint, *rule, *file;
} known_finding;

static int known_cmp(const void *a, const void *b)
{
    const known_finding *x = a, *y = b;
    int c = strcmp(x->fingerprint, y->fingerprint);
    if (!c) c = strcmp(x->rule, y->rule);
    return c ? c : strcmp(x->file, y->file);
}

/* The baseline is sorted once and each finding looked up by binary search,
 * so a large baseline against many findings costs (n + m) log m, not n * m.
 * Entries without the three strings are ignored, as before. */
int cli_baseline_filter(cli_findings *list, const char *path)
{
    json_error_t error;
    json_t *doc = json_load_file(path, 0, &error);
    if (!doc || !json_is_array(doc)) {
        fprintf(stderr, "keyward scan: baseline %s: %s\n", path,
                doc ? "expected a JSON array" : error.text);
        json_decref(doc);
        return -1;
    }
    size_t n = json_array_size(doc), count = 0;
    known_finding *known = malloc((n ? n : 1) * sizeof *known);
    if (!known) {
        fprintf(stderr, "keyward scan: baseline %s: out of memory\n", path);
        json_decref(doc);
        return -1;
    }
    size_t j;
    json_t *entry;
    json_array_foreach(doc, j, entry) {
        known_finding k = {json_string_value(json_object_get(entry, "fingerprint")),
                           json_string_value(json_object_get(entry, "rule")),
                           json_string_value(json_object_get(entry, "file"))};
        if (k.fingerprint && k.rule && k.file) known[count++] = k;
    }
    qsort(known, count, sizeof *known, known_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        cli_finding *f = &list->items[i];
        known_finding key = {f->fingerprint, f->rule_id, f->file};
        if (count && bsearch(&key, known, count, sizeof *known, known_cmp)) free(f->file);
        else list->items[kept++] = *f;
    }
    list->count = kept;
    free(known);
    json_decref(doc);
    return 0;
}
