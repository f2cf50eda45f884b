/* channel_meta: the Graph API code Messenger and Instagram Direct share —
 * webhook handshake, signature, messaging events, Send API rendering, the
 * access token and Meta's error codes. Each of the two adapters is a
 * pl_meta_platform and one-line hooks (channel_messenger.c,
 * channel_instagram.c). */
#ifndef PL_CHANNEL_META_H
#define PL_CHANNEL_META_H

#include "channel.h"

/* What differs between the platforms on Meta's Graph API. */
typedef struct {
    const char *name;          /* "messenger": msg.channel.platform, and in messages */
    const char *title;         /* "Messenger": for messages */
    const char *object;        /* the webhook body's object: "page", "instagram" */
    const char *object_hint;   /* what to do about a body of another object */
    const char *token_setting; /* the setting holding the access token */
    size_t text_max;           /* a text message's limit */
    int text_in_bytes;         /* 1: text_max counts UTF-8 bytes; 0: UTF-16 units */
} pl_meta_platform;

/* The adapter hooks (channel.h), for the platform p. */
int pl_meta_inbound(const pl_meta_platform *p, const pl_channel_config *cfg, const pl_webhook *req,
                    pl_inbound *out, char **err);
int pl_meta_render(const pl_meta_platform *p, const pl_channel_config *cfg, const pl_outbound *to,
                   const json_t *replies, json_t **calls, char **err);
int pl_meta_authorize(const pl_meta_platform *p, const pl_channel_config *cfg, json_t *headers, char **url,
                      char **err);
void pl_meta_retry_hint(long status, const char *body, int *retry, long *delay_s);

/* Meta's messaging window: a business may answer within 24 hours of the
 * person's last message; past it, only a person's words (a human agent's,
 * tagged HUMAN_AGENT) may go, for 7 days. */
#define PL_META_WINDOW_S (24L * 3600)
#define PL_META_AGENT_WINDOW_S (7L * 24 * 3600)

#endif
