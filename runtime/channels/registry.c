/* registry: which channel adapters parley has, found by name; see
 * channel.h (pl_channel_find). The table stands above the adapters, which
 * use channel.c's helpers: a new adapter is one line here. */
#include <string.h>

#include "channel.h"

extern const pl_channel_adapter pl_channel_whatsapp;
extern const pl_channel_adapter pl_channel_messenger;
extern const pl_channel_adapter pl_channel_telegram;
extern const pl_channel_adapter pl_channel_twilio;
extern const pl_channel_adapter pl_channel_alexa;
extern const pl_channel_adapter pl_channel_instagram;
extern const pl_channel_adapter pl_channel_email;
extern const pl_channel_adapter pl_channel_slack;
extern const pl_channel_adapter pl_channel_wechat;
extern const pl_channel_adapter pl_channel_x;

static const pl_channel_adapter *const adapters[] = {
    &pl_channel_whatsapp,
    &pl_channel_messenger,
    &pl_channel_telegram,
    &pl_channel_twilio,
    &pl_channel_alexa,
    &pl_channel_instagram,
    &pl_channel_email,
    &pl_channel_slack,
    &pl_channel_wechat,
    &pl_channel_x,
};

const pl_channel_adapter *pl_channel_find(const char *name) {
    for (size_t i = 0; i < sizeof adapters / sizeof *adapters; i++)
        if (strcmp(adapters[i]->name, name) == 0 && adapters[i]->inbound) return adapters[i];
    return NULL;
}

int pl_channel_is_internal(const char *name) {
    return strcmp(name, "rest") == 0 || strcmp(name, "console") == 0;
}

int pl_channel_can_push(const char *name) {
    const pl_channel_adapter *a = pl_channel_find(name);
    return (a && !a->synchronous) || strcmp(name, "webchat") == 0;
}
