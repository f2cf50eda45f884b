/* fuzz.c: the helpers tests/fuzz/fuzz.h declares: the text request format
 * of the channel targets, the webhook an adapter sees, and the checks of
 * what an adapter promises (channel.h). */
#define _GNU_SOURCE
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/log.h"
#include "core/turn.h"
#include "http/rest.h"

void fuzz_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "%s:%d: broken promise: %s\n", file, line, what);
    abort();
}

static void ignore_line(pl_log_level level, const char *line, void *ud) {
    (void)level;
    (void)line;
    (void)ud;
}

void fuzz_quiet_log(void) { pl_log_set_sink(ignore_line, NULL, 1); }

/* --- the request format (see fuzz.h) --------------------------------------------- */

/* "METHOD /path?query signed": missing words fall back to POST and "/". */
static void read_request_line(fuzz_request *r, const char *s, size_t n) {
    char *line = pl_strndup(s, n), *save = NULL;
    char *method = strtok_r(line, " \r", &save);
    char *target = method ? strtok_r(NULL, " \r", &save) : NULL;
    char *flag = target ? strtok_r(NULL, " \r", &save) : NULL;
    r->method = pl_strdup(method ? method : "POST");
    r->url = pl_strdupf("https://parley.test%s", target ? target : "/");
    char *question = strchr(r->url, '?');
    r->query = question ? pl_strdup(question + 1) : NULL;
    r->sign = flag && strcmp(flag, "signed") == 0;
    free(line);
}

void fuzz_request_set_header(fuzz_request *r, const char *name, const char *value) {
    size_t i = 0;
    while (i < r->nheaders && strcasecmp(r->names[i], name) != 0) i++;
    if (i == FUZZ_MAX_HEADERS) return;
    if (i == r->nheaders) {
        r->names[i] = pl_strdup(name);
        r->nheaders++;
    } else {
        free(r->values[i]);
    }
    r->values[i] = pl_strdup(value);
}

/* "Name: value" (a line without a colon is skipped). */
static void read_header_line(fuzz_request *r, const char *s, size_t n) {
    const char *colon = memchr(s, ':', n);
    if (!colon) return;
    char *name = pl_strndup(s, (size_t)(colon - s));
    const char *v = colon + 1;
    while (v < s + n && *v == ' ') v++;
    char *value = pl_strndup(v, (size_t)(s + n - v));
    fuzz_request_set_header(r, name, value);
    free(name);
    free(value);
}

void fuzz_request_read(fuzz_request *r, const uint8_t *data, size_t size) {
    memset(r, 0, sizeof *r);
    const char *p = (const char *)data, *end = p + size;
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (n && line[n - 1] == '\r') n--;
        if (first) read_request_line(r, line, n);
        else if (n == 0) break;
        else read_header_line(r, line, n);
        first = 0;
    }
    if (first) read_request_line(r, "", 0);
    r->body_len = (size_t)(end - p);
    r->body = pl_strndup(p, r->body_len);
}

void fuzz_request_free(fuzz_request *r) {
    free(r->method);
    free(r->url);
    free(r->query);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->body);
    memset(r, 0, sizeof *r);
}

void fuzz_sign_meta(fuzz_request *r, const char *app_secret) {
    char *hex = pl_channel_hmac_hex("sha256", app_secret, r->body, r->body_len);
    char *value = pl_strdupf("sha256=%s", hex);
    fuzz_request_set_header(r, "X-Hub-Signature-256", value);
    free(value);
    free(hex);
}

/* --- the webhook and the adapter's promises ------------------------------------------ */

static const char *header_of(const void *ctx, const char *name) {
    const fuzz_request *r = ctx;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0) return r->values[i];
    return NULL;
}

static char *long_payload(const void *ctx, const char *key) {
    (void)ctx;
    return strcmp(key, FUZZ_SHORT_KEY) == 0 ? pl_strdup("a payload too long for the platform") : NULL;
}

pl_webhook fuzz_webhook(const fuzz_request *r, long long now) {
    return (pl_webhook){
        .method = r->method,
        .url = r->url,
        .query = r->query,
        .body = r->body,
        .body_len = r->body_len,
        .header = header_of,
        .header_ctx = r,
        .now = now,
        .long_payload = long_payload,
    };
}

/* What the server does with an accepted event: stores its JSON in the
 * inbox, and makes the message a turn runs on. */
static void check_event(const char *channel, const json_t *event) {
    fuzz_expect(json_is_object(event), "an event is an object");
    const char *kind = json_string_value(json_object_get(event, "kind"));
    const char *user = json_string_value(json_object_get(event, "user"));
    fuzz_expect(kind && (strcmp(kind, "message") == 0 || strcmp(kind, "status") == 0),
                "an event's kind is message or status");
    fuzz_expect(user && *user, "an event names its user");
    char *stored = json_dumps(event, JSON_COMPACT);
    fuzz_expect(stored != NULL, "an event can be stored as JSON");
    free(stored);
    pl_message *msg = pl_message_from_event("fuzz", channel, event, 0);
    pl_message_free(msg);
}

void fuzz_inbound(const char *channel, const json_t *settings, const pl_webhook *req) {
    const pl_channel_adapter *adapter = pl_channel_find(channel);
    fuzz_expect(adapter != NULL, "the channel has an adapter");
    pl_channel_config cfg = {"fuzz", channel, settings};
    pl_inbound out = {.status = 200};
    char *err = NULL;
    if (adapter->inbound(&cfg, req, &out, &err) == PL_OK) {
        fuzz_expect(out.status >= 200 && out.status < 400, "an accepted webhook is answered 2xx");
        fuzz_expect(!out.events || json_is_array(out.events), "events are an array");
        size_t i;
        json_t *event;
        json_array_foreach(out.events, i, event) check_event(channel, event);
    } else {
        fuzz_expect(out.status >= 400 && out.status < 600, "a refused webhook is answered 4xx/5xx");
        fuzz_expect(err && *err, "a refused webhook says why (the log line's reason)");
        json_t *answer = pl_rest_error(err);
        fuzz_expect(answer != NULL, "the reason can be answered as JSON");
        json_decref(answer);
    }
    if (getenv("FUZZ_VERBOSE")) {
        char *events = out.events ? json_dumps(out.events, JSON_COMPACT) : NULL;
        fprintf(stderr, "%s: %d %s\n", channel, out.status, err ? err : events ? events : "");
        free(events);
    }
    free(err);
    pl_inbound_clear(&out);
}

void fuzz_channel(const char *channel, const json_t *settings, void (*sign)(fuzz_request *r, const char *secret),
                  const char *secret, const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    if (r.sign && sign) sign(&r, secret);
    pl_webhook req = fuzz_webhook(&r, FUZZ_NOW);
    fuzz_inbound(channel, settings, &req);
    fuzz_request_free(&r);
}
