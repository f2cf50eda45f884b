/* shoppers: a shopper's export; see shoppers.h. The document is the
 * store's (pl_store_shopper_export) with who and when in front and the
 * orders shown as the orders API shows them. */
#include "shoppers.h"

#include <stdlib.h>

#include "app/analytics.h"
#include "base/common.h"
#include "base/log.h"
#include "reply.h"
#include "store_reply.h"

typedef struct {
    char *bot, *channel, *user;
    json_t *doc; /* the store's, or NULL: nothing stored */
    int failed;
} export_read;

static void read_export(pl_store *store, void *ud) {
    export_read *r = ud;
    pl_session_key key = {r->bot, r->channel, r->user};
    char *err = NULL;
    if (pl_store_shopper_export(store, &key, PL_STORE_EXPORT_MAX, &r->doc, &err) != PL_OK) {
        pl_error("[%s] export of a shopper: %s", r->bot, err);
        r->failed = 1;
    }
    free(err);
}

static void answer_export(struct evhttp_request *req, void *ud) {
    export_read *r = ud;
    if (!req) {
        /* the client went away: nothing to answer */
    } else if (r->failed) {
        pl_reply_error(req, 503, "the store is unavailable; please retry");
    } else if (!r->doc) {
        pl_reply_error(req, 404, "nothing is stored for this bot, channel and user");
    } else {
        /* an order's token opens its payment page: it is parley's and the
         * provider's, not data about the shopper (the orders API leaves it
         * out too) */
        size_t i;
        json_t *order;
        json_array_foreach(json_object_get(r->doc, "orders"), i, order) json_object_del(order, "token");
        /* a turn's events in order, the marked ones (message, step ...) too */
        json_t *row;
        json_array_foreach(json_object_get(r->doc, "events"), i, row) {
            char *list = json_dumps(json_object_get(row, "events"), JSON_COMPACT);
            json_object_set_new(row, "events",
                                pl_analytics_row_events(json_string_value(json_object_get(row, "names")), list,
                                                        json_string_value(json_object_get(row, "step"))));
            json_object_del(row, "names");
            free(list);
        }
        json_t *answer = json_pack("{s:s, s:s, s:s, s:I}", "bot", r->bot, "channel", r->channel, "user", r->user,
                                   "exported_at", (json_int_t)pl_now_ms());
        json_object_update(answer, r->doc);
        pl_reply_json(req, 200, answer);
    }
    json_decref(r->doc);
    free(r->bot);
    free(r->channel);
    free(r->user);
    free(r);
}

void pl_shopper_export(pl_app *app, struct evhttp_request *req, pl_bot *bot, const char *channel, const char *user) {
    export_read *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->bot = pl_strdup(pl_bot_name(bot));
    r->channel = pl_strdup(channel);
    r->user = pl_strdup(user);
    pl_reply_after_long_read(req, pl_app_store(app), read_export, answer_export, r);
}
