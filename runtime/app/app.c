/* app: opens the store, the bots, the pipeline and the watcher, hands the
 * files below it what they call up through (pl_app_wire_layers), and ties hot
 * reload together (a load may change a bot's retention, retention.h); see
 * app.h. */
#define _GNU_SOURCE
#include "app.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/secrets.h"
#include "commerce/commerce.h"
#include "core/http_lua.h"
#include "core/llm_lua.h"
#include "core/modules.h"
#include "event/workers.h"
#include "jobs.h"
#include "retention.h"

struct pl_app {
    struct event_base *base;
    pl_store *store;
    char *node;              /* its name: config.node, else the host name */
    int64_t lease_ms;        /* several nodes: share_store */
    struct event *lease_ev;
    pl_bot **bots;
    size_t nbots;
    pl_pipeline *pipeline;
    pl_outbox *outbox;
    int offline; /* config.offline: the outbox finds no channel to send on */
    pl_http_client *http;
    pl_commerce *commerce;
    pl_jobs *jobs;
    pl_retention *retention;
    pl_watch *watch;
    int reload_wait_ms; /* a change this recent is waited for before a turn */
    pl_workers *workers; /* NULL: turns run on the loop */
    struct watch_target *targets; /* one per bot, for the watcher's callbacks */
    pl_reload_fn on_reload;
    void *on_reload_ud;
    pl_metric_reader *aborts_reader, *script_reader; /* the bots' budget aborts and script time (usage.h) */
};

/* Reloads after a change, and those that failed, by bot (docs/metrics.md). */
static pl_metric *reloads, *reload_failures;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    reloads = pl_metric_counter("parley_reloads_total", "Reloads of a bot's scripts after a change to its folder", "bot");
    reload_failures = pl_metric_counter("parley_reload_failures_total",
                                        "Reloads that failed (the previous version kept serving)", "bot");
}

/* What usage.c counts per bot, read when /metrics asks. */
static void read_budget_aborts(pl_metric_out *out, void *ud) {
    pl_app *app = ud;
    static const char *const budgets[] = {"instructions", "time", "memory"};
    for (size_t i = 0; i < app->nbots; i++) {
        json_t *usage = pl_usage_json(pl_bot_usage(app->bots[i]));
        json_t *aborts = json_object_get(usage, "aborts");
        for (size_t b = 0; b < 3; b++)
            pl_metric_sample(out, (const char *[]){pl_bot_name(app->bots[i]), budgets[b]},
                             (double)json_integer_value(json_object_get(aborts, budgets[b])));
        json_decref(usage);
    }
}

static void read_script_time(pl_metric_out *out, void *ud) {
    pl_app *app = ud;
    for (size_t i = 0; i < app->nbots; i++) {
        json_t *usage = pl_usage_json(pl_bot_usage(app->bots[i]));
        pl_metric_sample(out, (const char *[]){pl_bot_name(app->bots[i])},
                         (double)json_integer_value(json_object_get(usage, "script_ms")) / 1000.0);
        json_decref(usage);
    }
}

typedef struct watch_target {
    pl_app *app;
    pl_bot *bot;
} watch_target;

static void report_load(pl_bot *bot, int ok, const char *changed, const pl_errors *errors,
                        const pl_errors *warnings, double ms) {
    for (size_t i = 0; warnings && i < warnings->count; i++)
        pl_warn("[%s] %s", pl_bot_name(bot), warnings->items[i]);
    if (ok) {
        pl_info("[%s] %s in %.1f ms%s%s", pl_bot_name(bot), changed ? "reloaded" : "loaded", ms,
                changed ? " after a change to " : "", changed ? changed : "");
        return;
    }
    for (size_t i = 0; i < errors->count; i++)
        pl_log_with(PL_LOG_ERROR, &(pl_log_fields){.bot = pl_bot_name(bot), .script_error = errors->items[i]}, "[%s] %s",
                    pl_bot_name(bot), errors->items[i]);
    pl_error("[%s] %s; %s", pl_bot_name(bot), changed ? "reload failed" : "scripts failed to load",
             pl_bot_vm(bot) ? "the previous version keeps serving" : "shoppers get the fallback reply");
}

/* A worker's new state of a bot, set on that worker between two turns. */
typedef struct {
    pl_bot *bot;
    pl_vm *vm;
    json_t *manifest;
} worker_state;

static void set_worker_state(void *arg) {
    worker_state *ws = arg;
    pl_bot_set_worker_state(ws->bot, ws->vm, ws->manifest);
    free(ws);
}

/* After every load, each turn thread gets a copy of the manifest it may
 * read (the loop replaces the bot's own), and after a load that worked, a
 * state of its own built like the one just loaded; turns already queued
 * there run first. A worker whose copy does not build keeps its state. */
static void spread_to_workers(pl_app *app, pl_bot *bot, int loaded) {
    for (size_t i = 0; i < pl_workers_count(app->workers); i++) {
        worker_state *ws = malloc(sizeof *ws);
        if (!ws) abort();
        *ws = (worker_state){bot, loaded ? pl_bot_build_copy(bot) : NULL, json_deep_copy(pl_bot_manifest(bot))};
        pl_workers_post(app->workers, i, set_worker_state, ws);
    }
}

static int load_bot(pl_app *app, pl_bot *bot, const char *changed) {
    pl_errors errors = {0}, warnings = {0};
    int64_t t0 = pl_monotonic_us();
    int ok = pl_bot_reload(bot, app->store, &errors, &warnings) == PL_OK;
    if (app->workers) spread_to_workers(app, bot, ok);
    if (ok && app->retention) pl_retention_watch(app->retention, bot); /* retention_days may have changed */
    report_load(bot, ok, changed, &errors, &warnings, (double)(pl_monotonic_us() - t0) / 1000.0);
    if (changed) pl_metric_add(reloads, (const char *[]){pl_bot_name(bot)}, 1);
    if (changed && !ok) pl_metric_add(reload_failures, (const char *[]){pl_bot_name(bot)}, 1);
    if (changed && app->on_reload) app->on_reload(bot, ok, changed, &errors, app->on_reload_ud);
    pl_errors_clear(&errors);
    pl_errors_clear(&warnings);
    return ok;
}

static void on_change(const char *changed, void *ud) {
    watch_target *t = ud;
    load_bot(t->app, t->bot, changed);
}

static int open_bots(pl_app *app, const pl_app_config *config, char **err) {
    app->bots = calloc(config->nbots ? config->nbots : 1, sizeof *app->bots);
    if (!app->bots) abort();
    for (size_t i = 0; i < config->nbots; i++) {
        pl_bot *bot = NULL;
        if (pl_bot_open(config->bot_dirs[i], &bot, err) != PL_OK) return PL_ERR;
        if (pl_app_find_bot(app, pl_bot_name(bot))) {
            pl_fail(err, "%s: another bot is already named '%s' (names must be unique)",
                    config->bot_dirs[i], pl_bot_name(bot));
            pl_bot_free(bot);
            return PL_ERR;
        }
        for (size_t j = 0; j < app->nbots; j++) {
            char *overlap = pl_secrets_overlap(pl_bot_name(app->bots[j]), pl_bot_name(bot));
            if (!overlap) continue;
            pl_fail(err, "%s", overlap);
            free(overlap);
            pl_bot_free(bot);
            return PL_ERR;
        }
        app->bots[app->nbots++] = bot;
    }
    return PL_OK;
}

/* How long a bot's folder must be quiet after a change before it reloads
 * (watch.h): PARLEY_RELOAD_SETTLE_MS, default PL_RELOAD_SETTLE_MS; a
 * message's turn meanwhile reloads it first (settle_before_turn), once the
 * change is PARLEY_RELOAD_WAIT_MS old. */
#define PL_RELOAD_SETTLE_MS 75

/* The milliseconds in the environment's variable name, within 0..max, or
 * fallback when it is not set. */
static int env_ms(const char *name, int fallback, long max) {
    const char *env = getenv(name);
    if (!env || !*env) return fallback;
    long ms = strtol(env, NULL, 10);
    return ms < 0 ? 0 : ms > max ? (int)max : (int)ms;
}

/* How long a change must be quiet before a message's turn loads it
 * (watch.h): PARLEY_RELOAD_WAIT_MS, default PL_RELOAD_WAIT_MS. An editor's
 * truncate and write are a millisecond apart; a turn between them runs
 * after the write (its mailbox waits, the loop goes on) instead of loading
 * the empty file. */
#define PL_RELOAD_WAIT_MS 20

static int64_t settle_before_turn(void *ud) {
    pl_app *app = ud;
    return pl_watch_settle_ms(app->watch, app->reload_wait_ms);
}

static int watch_bots(pl_app *app, char **err) {
    app->watch = pl_watch_new(app->base, env_ms("PARLEY_RELOAD_SETTLE_MS", PL_RELOAD_SETTLE_MS, 600000), err);
    app->reload_wait_ms = env_ms("PARLEY_RELOAD_WAIT_MS", PL_RELOAD_WAIT_MS, 10000);
    if (!app->watch) return PL_ERR;
    app->targets = calloc(app->nbots ? app->nbots : 1, sizeof *app->targets);
    if (!app->targets) abort();
    for (size_t i = 0; i < app->nbots; i++) {
        app->targets[i] = (watch_target){app, app->bots[i]};
        if (pl_watch_add(app->watch, pl_bot_dir(app->bots[i]), on_change, &app->targets[i], err) !=
            PL_OK)
            return PL_ERR;
    }
    return PL_OK;
}

/* The outbox's view of the bots' channel settings. */
static int lookup_channel(const char *bot_name, const char *channel, pl_channel_config *cfg, void *ud) {
    if (((pl_app *)ud)->offline) return 0;
    pl_bot *bot = pl_app_find_bot(ud, bot_name);
    const json_t *settings = bot ? pl_bot_channel_settings(bot, channel) : NULL;
    if (!settings) return 0;
    *cfg = (pl_channel_config){pl_bot_name(bot), channel, settings};
    return 1;
}

/* Messages a platform delivered that were recorded but not handled before
 * the last stop go to their mailboxes again (those received before
 * received_before: with several nodes, a node that died left them); handled
 * ones older than a week are forgotten. A message another node handles
 * meanwhile is skipped when its session is taken (pipeline.c). The store's
 * thread reads them (pl_store_offload). */
typedef struct {
    pl_app *app;
    int64_t received_before;
    json_t *rows;
    char *err;
} inbox_look;

static void read_inbox(pl_store *store, void *ud) {
    inbox_look *l = ud;
    if (pl_store_inbox_prune(store, pl_now_ms() - 7LL * 24 * 3600 * 1000, &l->err) == PL_OK)
        pl_store_inbox_pending(store, l->received_before, &l->rows, &l->err);
}

static void inbox_read(void *ud) {
    inbox_look *l = ud;
    pl_app *app = l->app;
    if (l->err) pl_error("inbox: %s", l->err);
    size_t i, resumed = 0;
    json_t *row;
    json_array_foreach(l->rows, i, row) {
        pl_bot *bot = pl_app_find_bot(app, json_string_value(json_object_get(row, "bot")));
        if (!bot) continue;
        pl_message *msg = pl_message_from_event(pl_bot_name(bot), json_string_value(json_object_get(row, "channel")),
                                                json_object_get(row, "message"),
                                                json_integer_value(json_object_get(row, "id")));
        msg->recovered = 1;
        pl_pipeline_post(app->pipeline, bot, msg, NULL, NULL);
        resumed++;
    }
    if (resumed)
        pl_info("inbox: handling %zu message%s received %s", resumed, resumed == 1 ? "" : "s",
                l->received_before == INT64_MAX ? "before the last stop" : "by a node that stopped");
    json_decref(l->rows);
    free(l->err);
    free(l);
}

static void recover_inbox(pl_app *app, int64_t received_before) {
    inbox_look *l = calloc(1, sizeof *l);
    if (!l) abort();
    *l = (inbox_look){.app = app, .received_before = received_before};
    pl_store_offload(app->store, read_inbox, inbox_read, l);
}

static void on_lease(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_app *app = arg;
    recover_inbox(app, pl_now_ms() - app->lease_ms);
}

static int64_t lease_ms(void) {
    const char *env = getenv("PARLEY_LEASE_MS");
    long long ms = env ? atoll(env) : 0;
    return ms > 0 ? ms : PL_LEASE_MS;
}

/* Several nodes on one database: this process's name for what it holds
 * (node, pid and start, so a restarted node is another holder), and the
 * timers that keep its holds and take over a dead node's work. */
static void share_store(pl_app *app) {
    if (!pl_store_is_shared(app->store)) return;
    app->lease_ms = lease_ms();
    char *owner = pl_strdupf("%s:%ld:%lld", app->node, (long)getpid(), (long long)pl_now_ms());
    pl_store_set_owner(app->store, owner, app->lease_ms);
    free(owner);
    pl_outbox_share(app->outbox, app->lease_ms);
    pl_jobs_share(app->jobs, app->lease_ms);
    app->lease_ev = event_new(app->base, -1, EV_PERSIST, on_lease, app);
    struct timeval tv = {(time_t)(app->lease_ms / 1000), (suseconds_t)(app->lease_ms % 1000) * 1000};
    event_add(app->lease_ev, &tv);
}

static pl_bot *find_bot_for_jobs(const char *name, void *ud) { return pl_app_find_bot(ud, name); }
static void jobs_changed(void *ud) { pl_jobs_kick(ud); }

static int start_workers(pl_app *app, size_t n, char **err) {
    if (pl_workers_start(app->base, n, &app->workers, err) != PL_OK) return PL_ERR;
    for (size_t i = 0; i < app->nbots; i++) pl_bot_set_workers(app->bots[i], n);
    pl_turn_use_workers(app->workers);
    return PL_OK;
}

/* A bot state's allow list of outbound HTTP and its language model's
 * settings, from its manifest. */
static void setup_bot_state(lua_State *L, const json_t *manifest, pl_errors *errors) {
    pl_http_lua_set_allow(L, json_object_get(manifest, "http"), errors);
    pl_llm_lua_setup(L, manifest);
}

void pl_app_wire_layers(void) {
    pl_modules_add("parley.http", pl_http_lua_open);
    pl_modules_add("parley.commerce", pl_commerce_lua_open);
    pl_modules_add("parley.llm", pl_llm_lua_open);
    pl_bot_set_state_setup(setup_bot_state);
}

/* The event loop. epoll's changelist: evhttp turns a connection's reading
 * and writing on and off several times per request, in separate calls; with
 * the changelist the loop hands epoll only the net change of each descriptor
 * once per pass, one epoll_ctl a request fewer (the whole server: about a
 * tenth less CPU a message at 64 connections, see docs/speed.md). Its one
 * hazard, a descriptor duplicated with dup() whose copy is watched too, does
 * not arise: parley watches only sockets it accepted or libcurl opened. */
static struct event_base *new_loop(void) {
    struct event_config *cfg = event_config_new();
    if (!cfg) return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

/* The node's name: the one given, else the host name (new). */
static char *node_name(const char *given) {
    char host[256] = "";
    if (!given && gethostname(host, sizeof host - 1) != 0) strcpy(host, "parley");
    return pl_strdup(given ? given : host);
}

int pl_app_open(const pl_app_config *config, pl_app **out, char **err) {
    pl_app_wire_layers();
    pthread_once(&metrics_once, make_metrics);
    pl_app *app = calloc(1, sizeof *app);
    if (!app) abort();
    app->base = new_loop();
    if (!app->base) {
        free(app);
        return pl_fail(err, "cannot create the event loop");
    }
    app->node = node_name(config->node);
    app->offline = config->offline;
    /* two priorities: the reload watch (watch.h) before everything else */
    event_base_priority_init(app->base, 2);
    int rc = pl_store_open(config->db_path, config->sync, &app->store, err);
    if (rc == PL_OK) rc = open_bots(app, config, err);
    if (rc == PL_OK && config->watch) rc = watch_bots(app, err);
    if (rc == PL_OK && config->threads > 1) rc = start_workers(app, config->threads - 1, err);
    if (rc != PL_OK) {
        pl_app_close(app);
        return PL_ERR;
    }
    for (size_t i = 0; i < app->nbots; i++) load_bot(app, app->bots[i], NULL);
    app->http = pl_http_client_new(app->base, err);
    if (!app->http) {
        pl_app_close(app);
        return PL_ERR;
    }
    pl_http_lua_use(app->http);
    app->outbox = pl_outbox_new(app->base, app->store, app->http, lookup_channel, app);
    app->pipeline = pl_pipeline_new(app->base, app->store);
    if (pl_pipeline_sync_off_loop(app->pipeline, config->sync == PL_SYNC_FULL, err) != PL_OK) {
        pl_app_close(app);
        return PL_ERR;
    }
    pl_pipeline_set_outbox(app->pipeline, app->outbox);
    app->commerce = pl_commerce_new(app->store, app->pipeline, app->http,
                                    config->public_url ? config->public_url : "http://localhost");
    pl_commerce_lua_use(app->commerce);
    app->jobs = pl_jobs_new(app->base, app->store, app->pipeline, find_bot_for_jobs, app);
    pl_pipeline_on_jobs(app->pipeline, jobs_changed, app->jobs);
    if (app->watch) pl_pipeline_before_turn(app->pipeline, settle_before_turn, app);
    app->retention = pl_retention_new(app->base, app->store, app->jobs, find_bot_for_jobs, app);
    for (size_t i = 0; i < app->nbots; i++) pl_retention_watch(app->retention, app->bots[i]);
    share_store(app);
    if (pl_outbox_resume(app->outbox, err) != PL_OK) {
        pl_app_close(app);
        return PL_ERR;
    }
    recover_inbox(app, INT64_MAX);
    app->aborts_reader = pl_metric_reader_add("parley_budget_aborts_total",
                                             "Script runs abandoned over a budget, by bot and budget (instructions, time, memory)",
                                             PL_METRIC_COUNTER, "bot,budget", read_budget_aborts, app);
    app->script_reader = pl_metric_reader_add("parley_script_seconds_total", "CPU time of the bots' scripts", PL_METRIC_COUNTER,
                                              "bot", read_script_time, app);
    *out = app;
    return PL_OK;
}

static void turn_thread_done(void *arg) {
    (void)arg;
    pl_turn_thread_done();
}

void pl_app_close(pl_app *app) {
    if (!app) return;
    pl_metric_reader_remove(app->aborts_reader);
    pl_metric_reader_remove(app->script_reader);
    /* the turn threads first: what they still post to the loop runs now */
    for (size_t i = 0; i < pl_workers_count(app->workers); i++)
        pl_workers_post(app->workers, i, turn_thread_done, NULL);
    pl_workers_stop(app->workers);
    pl_turn_use_workers(NULL);
    /* the store's thread next: the dones of what it still has run now,
     * while what they touch is there */
    if (app->store) pl_store_drain(app->store);
    pl_commerce_lua_use(NULL);
    pl_commerce_free(app->commerce);
    if (app->lease_ev) event_free(app->lease_ev);
    pl_retention_free(app->retention);
    pl_jobs_free(app->jobs);
    pl_pipeline_free(app->pipeline);
    pl_outbox_free(app->outbox);
    pl_http_lua_use(NULL);
    pl_http_client_free(app->http);
    pl_watch_free(app->watch);
    free(app->targets);
    for (size_t i = 0; i < app->nbots; i++) pl_bot_free(app->bots[i]);
    free(app->bots);
    pl_store_close(app->store);
    event_base_free(app->base);
    free(app->node);
    free(app);
}

struct event_base *pl_app_base(pl_app *app) { return app->base; }
pl_outbox *pl_app_outbox(pl_app *app) { return app->outbox; }
pl_http_client *pl_app_http(pl_app *app) { return app->http; }
pl_commerce *pl_app_commerce(pl_app *app) { return app->commerce; }
pl_store *pl_app_store(pl_app *app) { return app->store; }
const char *pl_app_node(const pl_app *app) { return app->node; }
pl_pipeline *pl_app_pipeline(pl_app *app) { return app->pipeline; }
size_t pl_app_bot_count(const pl_app *app) { return app->nbots; }
pl_bot *pl_app_bot(pl_app *app, size_t i) { return i < app->nbots ? app->bots[i] : NULL; }

pl_bot *pl_app_find_bot(pl_app *app, const char *name) {
    for (size_t i = 0; i < app->nbots; i++)
        if (strcmp(pl_bot_name(app->bots[i]), name) == 0) return app->bots[i];
    return NULL;
}

void pl_app_on_reload(pl_app *app, pl_reload_fn fn, void *ud) {
    app->on_reload = fn;
    app->on_reload_ud = ud;
}

void pl_app_drain(pl_app *app) {
    while (pl_pipeline_pending(app->pipeline) > 0 || pl_store_offloaded(app->store) > 0)
        if (event_base_loop(app->base, EVLOOP_ONCE) < 0) break;
}

void pl_app_clock_moved(pl_app *app) { pl_jobs_kick(app->jobs); }
