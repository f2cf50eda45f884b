/* webhook_fixture.h: what the channel adapters' C tests share — a
 * request's headers as a NULL-terminated list of {name, value} with the
 * lookup pl_webhook.header takes, and the payload map the outbox keeps
 * (fake_short_payload stores a long payload under its key,
 * fake_long_payload finds it again; map_clear forgets them). Include after
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

#endif
