/* access: the staff APIs' tokens and their scope; see access.h. */
#include "access.h"

#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/secrets.h"
#include "channels/channel.h"
#include "reply.h"

/* The token given: the Authorization header, or ?access_token=. A new
 * string, or NULL. */
static char *given_token(struct evhttp_request *req) {
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0) return pl_strdup(auth + 7);
    struct evkeyvalq params;
    pl_request_query(req, &params);
    const char *token = evhttp_find_header(&params, "access_token");
    char *copy = token ? pl_strdup(token) : NULL;
    evhttp_clear_headers(&params);
    return copy;
}

/* A bot's own token: the variable its bot.json field names, in its namespace. */
static const char *bot_token(pl_bot *bot, const char *field) {
    const char *env = json_string_value(json_object_get(pl_bot_manifest(bot), field));
    return env ? pl_secrets_get(pl_bot_name(bot), env) : NULL;
}

int pl_access_allowed(pl_app *app, const pl_access *access, struct evhttp_request *req, const char **scope) {
    const char *all = getenv(access->all_env);
    int enabled = all && *all;
    for (size_t i = 0; !enabled && i < pl_app_bot_count(app); i++) enabled = bot_token(pl_app_bot(app, i), access->bot_field) != NULL;
    if (!enabled) {
        pl_reply_error(req, 403, "%s is disabled: set %s (every bot) or a bot's %s to enable it", access->what,
                       access->all_env, access->bot_field);
        return 0;
    }
    char *given = given_token(req);
    int ok = all && *all && pl_channel_signature_equal(given, all);
    *scope = NULL;
    for (size_t i = 0; !ok && i < pl_app_bot_count(app); i++) {
        pl_bot *bot = pl_app_bot(app, i);
        const char *own = bot_token(bot, access->bot_field);
        if (own && pl_channel_signature_equal(given, own)) {
            ok = 1;
            *scope = pl_bot_name(bot);
        }
    }
    free(given);
    if (!ok) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        pl_reply_error(req, 401, "a valid token for %s is required (Authorization: Bearer <token>)", access->what);
    }
    return ok;
}

int pl_access_in_scope(const char *scope, const char *bot) {
    return !scope || (bot && strcmp(scope, bot) == 0);
}
