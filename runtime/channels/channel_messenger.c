/* channel_messenger: the Facebook Messenger Platform adapter (channel.h):
 * Page webhooks (object "page") and the Send API with the page access
 * token. Everything it does is Meta's Graph API, shared with Instagram
 * Direct in channel_meta.c, where the documentation followed is cited;
 * this file is what is Messenger's own. */
#include "channel_meta.h"

#define MESSENGER_API_BASE "https://graph.facebook.com/v19.0"

/* Send API text: at most 2000 characters
 * (https://developers.facebook.com/docs/messenger-platform/reference/send-api). */
static const pl_meta_platform messenger = {
    .name = "messenger",
    .title = "Messenger",
    .object = "page",
    .object_hint = "subscribe the app to a Page",
    .token_setting = "page_access_token",
    .text_max = 2000,
    .text_in_bytes = 0,
};

static int messenger_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                             char **err) {
    return pl_meta_inbound(&messenger, cfg, req, out, err);
}

static int messenger_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                            json_t **calls, char **err) {
    return pl_meta_render(&messenger, cfg, to, replies, calls, err);
}

static int messenger_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                               char **err) {
    (void)user_pwd;
    return pl_meta_authorize(&messenger, cfg, headers, url, err);
}

const pl_channel_adapter pl_channel_messenger = {
    .name = "messenger",
    .default_api_base = MESSENGER_API_BASE,
    .synchronous = 0,
    .inbound = messenger_inbound,
    .render = messenger_render,
    .authorize = messenger_authorize,
    .retry_hint = pl_meta_retry_hint,
    .window_s = PL_META_WINDOW_S,
    .agent_window_s = PL_META_AGENT_WINDOW_S,
};
