/* cli_schema.c — `keyward schema`: the OpenAPI document the server serves
 * at GET /api/schema/, printed without a server (for client generators in
 * a build, and for the test suite, which checks every answer it gets
 * against it without adding a request of its own). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "http/http.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward schema [--public-url URL] [--compact]\n\n"
            "Prints the OpenAPI 3.1 document of keyward's HTTP API, as GET /api/schema/\n"
            "answers it: every route of the server, generated from its route table, with\n"
            "the credentials, scope and level each needs.\n"
            "  --public-url URL  the server's address, listed as its one server (default\n"
            "                    $KEYWARD_PUBLIC_URL, else \"/\")\n"
            "  --compact         one line instead of indented JSON\n");
}

int kw_cli_schema(int argc, char **argv)
{
    static const struct option OPTIONS[] = {{"public-url", required_argument, NULL, 'u'},
                                            {"compact", no_argument, NULL, 'c'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *url = getenv("KEYWARD_PUBLIC_URL");
    int compact = 0, c;
    while ((c = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 'c': compact = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    char clean[KW_PUBLIC_URL_MAX + 1] = "";
    if (url && *url && kw_http_public_url(url, clean, sizeof clean)) {
        fprintf(stderr, "keyward schema: --public-url: http:// or https:// followed by a host\n");
        return 2;
    }
    json_t *doc = kw_openapi_document(clean[0] ? clean : NULL);
    char *text = doc ? json_dumps(doc, (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_SORT_KEYS)
                     : NULL;
    json_decref(doc);
    if (!text) {
        fprintf(stderr, "keyward schema: out of memory\n");
        return 1;
    }
    puts(text);
    free(text);
    return 0;
}
