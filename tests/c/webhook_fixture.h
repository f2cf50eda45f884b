/* webhook_fixture.h: what the channel adapters' C tests share — a
 * request's headers as a NULL-terminated list of {name, value} with the
 * lookup pl_webhook.header takes, and the payload map the outbox keeps
 * (fake_short_payload stores a long payload under its key,
 * fake_long_payload finds it again; map_clear forgets them), field(), the
 * GET and signed-POST requests a webhook test makes (webhook_get,
 * webhook_post_signed, hub_signature), events_taken, which keeps the
 * events of an accepted request, and reply_with_choices. Include after
 * channels/channel.h. */
#ifndef PL_WEBHOOK_FIXTURE_H
#define PL_WEBHOOK_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name, *value;
} header;

static inline const char *find_header(const void *ctx, const char *name) {
    for (const header *h = ctx; h && h->name; h++)
        if (strcasecmp(h->name, name) == 0) return h->value;
    return NULL;
}

static char map_keys[8][16];
static char *map_payloads[8];
static int map_size;

static inline char *fake_short_payload(void *ctx, const char *payload) {
    (void)ctx;
    char *key = pl_channel_payload_key(payload);
    if (map_size < 8) {
        snprintf(map_keys[map_size], sizeof map_keys[0], "%s", key);
        map_payloads[map_size++] = strdup(payload);
    }
    return key;
}

static inline char *fake_long_payload(const void *ctx, const char *key) {
    (void)ctx;
    for (int i = 0; i < map_size; i++)
        if (strcmp(map_keys[i], key) == 0) return strdup(map_payloads[i]);
    return NULL;
}

static inline void map_clear(void) {
    for (int i = 0; i < map_size; i++) free(map_payloads[i]);
    map_size = 0;
}

/* A string member of obj, or NULL. */
static inline const char *field(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

/* Runs adapter's inbound for cfg on req into in (zeroed, status 200 to
 * start with); its result. */
static inline int webhook_inbound(const pl_channel_adapter *adapter, const pl_channel_config *cfg,
                                  const pl_webhook *req, pl_inbound *in, char **err) {
    memset(in, 0, sizeof *in);
    in->status = 200;
    return adapter->inbound(cfg, req, in, err);
}

/* A GET of url with the raw query (no headers). */
static inline int webhook_get(const pl_channel_adapter *adapter, const pl_channel_config *cfg, const char *url,
                              const char *query, pl_inbound *in, char **err) {
    pl_webhook req = {.method = "GET", .url = url, .query = query, .body = "", .body_len = 0, .header = find_header};
    return webhook_inbound(adapter, cfg, &req, in, err);
}

/* "sha256=" and the HMAC-SHA256 of body keyed with secret, in hex or (base64
 * true) base64; new. */
static inline char *hub_signature(const char *secret, const char *body, int base64) {
    char *mac = base64 ? pl_channel_hmac_base64("sha256", secret, body, strlen(body))
                       : pl_channel_hmac_hex("sha256", secret, body, strlen(body));
    char *signature = malloc(strlen(mac) + 8);
    sprintf(signature, "sha256=%s", mac);
    free(mac);
    return signature;
}

/* POSTs a JSON body to url with the signature header sig_header given
 * (signature NULL: hub_signature of the body with secret, base64 as asked;
 * "": no such header), long payloads looked up in the payload map. */
static inline int webhook_post_signed(const pl_channel_adapter *adapter, const pl_channel_config *cfg,
                                      const char *url, const char *body, const char *sig_header,
                                      const char *signature, const char *secret, int base64, pl_inbound *in,
                                      char **err) {
    char *good = signature ? NULL : hub_signature(secret, body, base64);
    if (good) signature = good;
    header headers[] = {{"Content-Type", "application/json"},
                        {*signature ? sig_header : "X-Other", signature},
                        {NULL, NULL}};
    pl_webhook req = {.method = "POST", .url = url, .body = body, .body_len = strlen(body), .header = find_header,
                      .header_ctx = headers, .long_payload = fake_long_payload};
    int rc = webhook_inbound(adapter, cfg, &req, in, err);
    free(good);
    return rc;
}

/* The events of an inbound call that returned rc into in: new when it
 * succeeded, else NULL (err printed as a TAP comment). Clears in and
 * frees err. */
static inline json_t *events_taken(int rc, pl_inbound *in, char *err) {
    if (rc != 0) printf("#   inbound failed: %s\n", err ? err : "(no reason)");
    json_t *events = rc == 0 ? json_incref(in->events) : NULL;
    pl_inbound_clear(in);
    free(err);
    return events;
}

/* Replies JSON with one reply of n choices titled "Choice i" (payload "p<i>"); new. */
static inline char *reply_with_choices(const char *text, int n) {
    size_t cap = 64 + (size_t)n * 64;
    char *s = malloc(cap);
    size_t len = (size_t)sprintf(s, "{\"text\":\"%s\",\"choices\":[", text);
    for (int i = 1; i <= n; i++)
        len += (size_t)sprintf(s + len, "%s{\"title\":\"Choice %d\",\"payload\":\"p%d\"}", i > 1 ? "," : "", i, i);
    sprintf(s + len, "]}");
    return s;
}

#endif
