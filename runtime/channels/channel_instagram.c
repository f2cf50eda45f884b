/* channel_instagram: the Instagram Direct adapter (channel.h): webhooks of
 * object "instagram" and the Send API on an Instagram professional
 * account. Instagram messaging is Meta's Graph API, the same as
 * Messenger's: the handshake, signature, events and calls are
 * channel_meta.c's, and this file is what is Instagram's own.
 *
 * The documentation followed, besides what channel_meta.c cites:
 *   Instagram messaging webhooks (object "instagram", entry[].messaging[]
 *   with message.mid/.text/.quick_reply/.attachments, message.is_echo,
 *   message.is_deleted, message.reply_to.story {url, id}, reactions,
 *   messaging_seen's read.mid, messaging_postbacks):
 *     https://developers.facebook.com/docs/messenger-platform/instagram/features/webhook
 *     https://developers.facebook.com/docs/instagram-platform/webhooks/examples
 *   Story mentions (an attachment of type "story_mention", payload.url the
 *   story's) and story replies:
 *     https://developers.facebook.com/docs/messenger-platform/instagram/features/story-mention
 *   Send API on Instagram (POST /me/messages with the Page access token of
 *   the Page linked to the account, recipient.id the Instagram-scoped id;
 *   text of at most 1000 bytes of UTF-8):
 *     https://developers.facebook.com/docs/messenger-platform/instagram/features/send-message
 *   Quick replies (at most 13, title up to 20 characters, text only):
 *     https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api/quick-replies
 *   Generic template (up to 10 elements, title and subtitle 80 characters,
 *   up to 3 postback or web_url buttons):
 *     https://developers.facebook.com/docs/messenger-platform/instagram/features/generic-template
 *   The 24-hour messaging window and the HUMAN_AGENT tag (7 days, for a
 *   person's replies):
 *     https://developers.facebook.com/docs/messenger-platform/instagram/features/human-agent
 *
 * The access token is the setting access_token: the Page access token
 * (graph.facebook.com, the default). An app on "Instagram API with
 * Instagram Login" calls graph.instagram.com instead: the setting
 * "login": "instagram" picks it (a bot chooses between Meta's two hosts,
 * never another). */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "channel_meta.h"

#define FACEBOOK_GRAPH "https://graph.facebook.com/v19.0"
#define INSTAGRAM_GRAPH "https://graph.instagram.com/v21.0"

static const pl_meta_platform instagram = {
    .name = "instagram",
    .title = "Instagram",
    .object = "instagram",
    .object_hint = "subscribe the app to the Instagram object's messages field",
    .token_setting = "access_token",
    .text_max = 1000,
    .text_in_bytes = 1,
};

static int instagram_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                             char **err) {
    return pl_meta_inbound(&instagram, cfg, req, out, err);
}

static int instagram_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                            json_t **calls, char **err) {
    return pl_meta_render(&instagram, cfg, to, replies, calls, err);
}

/* The token as channel_meta.c adds it; with "login": "instagram" (and no
 * operator's PARLEY_INSTAGRAM_API_BASE) the calls go to graph.instagram.com. */
static int instagram_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                               char **err) {
    (void)user_pwd;
    const char *login = pl_channel_setting(cfg, "login");
    size_t base = strlen(FACEBOOK_GRAPH);
    if (login && strcmp(login, "instagram") == 0 && strncmp(*url, FACEBOOK_GRAPH, base) == 0) {
        char *moved = pl_strdupf("%s%s", INSTAGRAM_GRAPH, *url + base);
        free(*url);
        *url = moved;
    }
    return pl_meta_authorize(&instagram, cfg, headers, url, err);
}

const pl_channel_adapter pl_channel_instagram = {
    .name = "instagram",
    .default_api_base = FACEBOOK_GRAPH,
    .synchronous = 0,
    .inbound = instagram_inbound,
    .render = instagram_render,
    .authorize = instagram_authorize,
    .retry_hint = pl_meta_retry_hint,
    .window_s = PL_META_WINDOW_S,
    .agent_window_s = PL_META_AGENT_WINDOW_S,
};
