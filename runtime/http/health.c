/* health: GET /v1/health, /v1/health/live and /v1/health/ready; see
 * health.h. Owns the node's name, start time and draining mark. */
#define _GNU_SOURCE
#include "health.h"
#include "reply.h"
#include "store_reply.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "channels/outbox.h"
#include "core/bot.h"
#include "store/store.h"

struct pl_health {
    pl_app *app;
    char *node;
    int64_t started_at;
    int draining;
    int database_failing; /* the last probe's database read failed */
};

pl_health *pl_health_new(pl_app *app, const char *node_name) {
    pl_health *h = calloc(1, sizeof *h);
    if (!h) abort();
    h->app = app;
    h->node = pl_strdup(node_name ? node_name : "parley");
    h->started_at = pl_now_ms();
    return h;
}

void pl_health_free(pl_health *h) {
    if (!h) return;
    free(h->node);
    free(h);
}

void pl_health_set_draining(pl_health *h) { h->draining = 1; }

static json_t *time_or_null(int64_t ms) {
    if (!ms) return json_null();
    char stamp[40];
    pl_format_time(ms, stamp, sizeof stamp);
    return json_string(stamp);
}

static json_t *bot_entry(pl_bot *bot) {
    const char *error = pl_bot_error(bot);
    const char *version = pl_bot_version(bot);
    json_t *entry = json_pack("{s:s, s:o, s:o, s:i, s:o, s:o}", "name", pl_bot_name(bot), "version",
                              version ? json_string(version) : json_null(), "loaded_at",
                              time_or_null(pl_bot_loaded_at(bot)), "loads", pl_bot_loads(bot), "error",
                              error ? json_string(error) : json_null(), "usage", pl_usage_json(pl_bot_usage(bot)));
    pl_vm *vm = pl_bot_vm(bot);
    if (vm)
        json_object_set_new(entry, "limits",
                            json_pack("{s:I, s:I, s:I}", "memory_mb", (json_int_t)(pl_vm_memory_limit(vm) >> 20),
                                      "instructions", (json_int_t)pl_vm_instruction_limit(vm), "time_ms",
                                      (json_int_t)pl_vm_time_limit_ms(vm)));
    return entry;
}

/* This node's sending since it started: calls sent, attempts retried,
 * dead letters, turns not sent past a platform's messaging window, and
 * calls waiting now. */
static json_t *outbox_entry(pl_outbox *outbox) {
    pl_outbox_stats st = pl_outbox_get_stats(outbox);
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "sent", (json_int_t)st.sent, "retried", (json_int_t)st.retried,
                     "dead", (json_int_t)st.dead, "outside_window", (json_int_t)st.outside_window, "pending",
                     (json_int_t)pl_outbox_pending(outbox));
}

static void reply_health(pl_health *h, struct evhttp_request *req) {
    json_t *bots = json_array();
    for (size_t i = 0; i < pl_app_bot_count(h->app); i++) json_array_append_new(bots, bot_entry(pl_app_bot(h->app, i)));
    json_t *node = json_pack("{s:s, s:I, s:o}", "name", h->node, "pid", (json_int_t)getpid(), "started_at",
                             time_or_null(h->started_at));
    pl_outbox *outbox = pl_app_outbox(h->app);
    if (outbox) json_object_set_new(node, "outbox", outbox_entry(outbox));
    pl_reply_json(req, 200, json_pack("{s:s, s:o, s:o}", "status", h->draining ? "draining" : "serving", "node",
                                      node, "bots", bots));
}

/* Ready: not draining, and the database answers (a node that cannot
 * record a message must not be sent one). The ping goes through the
 * store's thread: a database that hangs holds the probe, not the loop, and
 * a thread that lags behind shows as a slow probe. */
typedef struct {
    pl_health *health;
    char *err;
} ping;

static void ping_database(pl_store *store, void *ud) {
    ping *p = ud;
    pl_store_ping(store, &p->err);
}

static void answer_ready(struct evhttp_request *req, void *ud) {
    ping *p = ud;
    pl_health *h = p->health;
    if (p->err) {
        /* said once when it starts failing, not at every probe */
        if (!h->database_failing) pl_warn("not ready: %s", p->err);
        h->database_failing = 1;
        if (req) pl_reply_json(req, 503, json_pack("{s:b, s:s}", "ready", 0, "reason", "the database does not answer"));
    } else {
        if (h->database_failing) pl_info("ready again: the database answers");
        h->database_failing = 0;
        if (req) pl_reply_json(req, 200, json_pack("{s:b}", "ready", 1));
    }
    free(p->err);
    free(p);
}

static void reply_ready(pl_health *h, struct evhttp_request *req) {
    if (h->draining) {
        pl_reply_json(req, 503, json_pack("{s:b, s:s}", "ready", 0, "reason", "draining: the node is stopping"));
        return;
    }
    ping *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->health = h;
    pl_reply_after_store(req, pl_app_store(h->app), ping_database, answer_ready, p);
}

int pl_health_route(pl_health *h, struct evhttp_request *req, char **seg, int n) {
    if (n < 2 || n > 3 || strcmp(seg[0], "v1") != 0 || strcmp(seg[1], "health") != 0) return 0;
    if (n == 3 && strcmp(seg[2], "live") != 0 && strcmp(seg[2], "ready") != 0) return 0;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        pl_reply_405(req, "GET");
        return 1;
    }
    if (n == 2) reply_health(h, req);
    else if (strcmp(seg[2], "live") == 0) pl_reply_json(req, 200, json_pack("{s:b}", "live", 1));
    else reply_ready(h, req);
    return 1;
}
