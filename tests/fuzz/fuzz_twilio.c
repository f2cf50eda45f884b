/* fuzz_twilio: the Twilio Messaging webhook (channel_twilio.c's inbound):
 * the form body or query, the X-Twilio-Signature header, and, for a
 * request marked "signed", the form past a correct signature.
 *
 * The signature is made here from Twilio's documentation, independently of
 * the adapter: base64 HMAC-SHA1, keyed with the auth token, of the URL and
 * then each POST parameter's name and value sorted by name (decoded by
 * libevent, as the server receives them). A body that is no form, or holds
 * a NUL, signs as the URL alone: the adapter then answers 400. */
#define _GNU_SOURCE
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "base/common.h"
#include "fuzz.h"

#define TOKEN "fuzz-auth-token"

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s, s:s}", "auth_token", TOKEN, "account_sid", "ACfuzz", "from", "+15550001111");
    return 0;
}

typedef struct {
    char *name, *value;
} pair;

/* By name; equal names by value, so the order never depends on arrival. */
static int by_name(const void *a, const void *b) {
    const pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* The text Twilio signs: url, then the form's sorted names and values. */
static char *signed_text(const char *url, const char *form) {
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    char *text = pl_strdup(url);
    if (!form || evhttp_parse_query_str(form, &q) != 0) {
        evhttp_clear_headers(&q);
        return text;
    }
    size_t n = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &q, next) n++;
    pair *pairs = calloc(n + 1, sizeof *pairs);
    if (!pairs) abort();
    n = 0;
    TAILQ_FOREACH(kv, &q, next) {
        pairs[n].name = evhttp_uridecode(kv->key, 1, NULL);
        pairs[n++].value = kv->value;
    }
    qsort(pairs, n, sizeof *pairs, by_name);
    for (size_t i = 0; i < n; i++) {
        char *longer = pl_strdupf("%s%s%s", text, pairs[i].name, pairs[i].value);
        free(text);
        free(pairs[i].name);
        text = longer;
    }
    free(pairs);
    evhttp_clear_headers(&q);
    return text;
}

static void sign(fuzz_request *r) {
    int post_form = strcmp(r->method, "GET") != 0 && strlen(r->body) == r->body_len;
    char *text = signed_text(r->url, post_form ? r->body : NULL);
    char *sig = pl_channel_hmac_base64("sha1", TOKEN, text, strlen(text));
    fuzz_request_set_header(r, "X-Twilio-Signature", sig);
    free(sig);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    if (r.sign) sign(&r);
    pl_webhook req = fuzz_webhook(&r, 1767225600);
    fuzz_inbound("twilio", settings, &req);
    fuzz_request_free(&r);
    return 0;
}
