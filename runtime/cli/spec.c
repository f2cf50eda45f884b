/* spec: `parley test` — runs a bot's spec/NAME_spec.lua files (and the
 * recorded conversations of spec/replays/) with busted inside the runtime,
 * the way Kong runs busted under its own interpreter. The specs run in a
 * plain Lua state (busted needs io and os); the bot runs in its real
 * sandboxed state, with the real pipeline and an in-memory store, offline,
 * reached through the `parley.testing` module. Each `it` gets a fresh app
 * (native.reset, which parley.testing calls from busted's hooks); with
 * --coverage, coverage.c counts what the specs reached across them. That
 * spec runtime is spec.h's, which `parley replay` (replay.c) runs in too. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/analytics.h"
#include "app/app.h"
#include "base/common.h"
#include "base/log.h"
#include "cli.h"
#include "coverage.h"
#include "commerce/commerce.h"
#include "core/modules.h"
#include "sandbox/json_lua.h"
#include "sandbox/usage.h"
#include "spec.h"

static const char test_usage[] =
    "usage: parley test [BOT_DIR] [--coverage[=FILE]] [BUSTED_OPTIONS ...]\n"
    "\n"
    "Runs BOT_DIR/spec/*_spec.lua with busted inside the parley runtime: the real\n"
    "flow engine, sandbox and store (in memory). Specs talk to the bot through\n"
    "require \"parley.testing\"; every `it` starts on a fresh bot (store, stock,\n"
    "clock, sessions, payments, logged errors) unless its block calls\n"
    "testing.share(). Exits non-zero when a spec fails.\n"
    "\n"
    "  --coverage         after the specs, print the flow steps and the templates\n"
    "                     (key per locale) that no spec reached, with a summary\n"
    "  --coverage=FILE    the same, and write it as JSON to FILE (\"-\": only the\n"
    "                     JSON, on stdout, after busted's output)\n"
    "\n"
    "Other options go to busted, for example: -o TAP, --filter NAME, --shuffle.\n";

/* The specs' world: the app the running `it` talks to, made afresh for the
 * next one (native.reset), and what outlives the apps (coverage). */
struct pl_spec {
    char *dir;     /* the bot's folder (config.bot_dirs' one) */
    char *shown_dir; /* the folder as the command line named it, or NULL */
    pl_app_config config;
    pl_app *app;
    int64_t advanced_ms;   /* how far native.advance moved parley's clock */
    pl_coverage *coverage; /* NULL without --coverage */
    int fresh;             /* nothing touched the app since it opened */
};
typedef struct pl_spec spec_world;

static const char world_key = 'w';
static const char exit_key = 'x';

/* Warnings and errors logged while specs run (turn failures with file:line),
 * for testing.errors(); kept off the terminal so TAP output stays readable. */
static json_t *logged;

static void capture_log(pl_log_level level, const char *line, void *ud) {
    (void)ud;
    if (level >= PL_LOG_WARN && logged) json_array_append_new(logged, json_string(line));
}

typedef struct {
    json_t *replies;
    int status;
    char *error; /* why the turn failed (new), or NULL */
} delivery;

static spec_world *world_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &world_key);
    spec_world *world = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return world;
}

static pl_app *app_of(lua_State *L) {
    spec_world *world = world_of(L);
    world->fresh = 0;
    return world->app;
}

static void on_deliver(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)msg;
    delivery *d = ud;
    d->status = status;
    d->replies = json_incref(pl_turn_replies(result));
    d->error = result->error ? pl_strdup(result->error) : NULL;
}

/* Pushes why a delivered turn failed ("file:line: message"), or nil. */
static void push_turn_error(lua_State *L, delivery *d) {
    if (d->error) lua_pushstring(L, d->error);
    else lua_pushnil(L);
    free(d->error);
    d->error = NULL;
}

static void set_optional(lua_State *L, int t, const char *key, char **dst) {
    lua_getfield(L, t, key);
    if (!lua_isnil(L, -1)) *dst = pl_strdup(luaL_checkstring(L, -1));
    lua_pop(L, 1);
}

/* native.send{user =, channel =, text =, payload =, locale =, info =} -> replies,
 * and why the turn failed (its fallback replies are the replies then) or nil */
static int native_send(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    pl_app *app = app_of(L);
    pl_bot *bot = pl_app_bot(app, 0);
    lua_getfield(L, 1, "user");
    lua_getfield(L, 1, "channel");
    pl_message *msg = pl_message_new(pl_bot_name(bot), luaL_optstring(L, -1, "rest"),
                                     luaL_checkstring(L, -2));
    lua_pop(L, 2);
    set_optional(L, 1, "text", &msg->text);
    set_optional(L, 1, "payload", &msg->payload);
    set_optional(L, 1, "locale", &msg->locale);
    lua_getfield(L, 1, "info");
    if (lua_istable(L, -1)) {
        char *err = NULL;
        msg->channel_info = pl_json_from_lua(L, -1, "info", &err);
        if (!msg->channel_info) {
            pl_message_free(msg);
            lua_pushstring(L, err);
            free(err);
            return lua_error(L);
        }
    }
    lua_pop(L, 1);
    delivery d = {NULL, 0, NULL};
    pl_pipeline_post(pl_app_pipeline(app), bot, msg, on_deliver, &d);
    pl_app_drain(app);
    if (d.status != 200) {
        json_decref(d.replies);
        free(d.error);
        return luaL_error(L, "the message was not committed (status %d)", d.status);
    }
    pl_json_push(L, d.replies);
    json_decref(d.replies);
    push_turn_error(L, &d);
    return 2;
}

/* native.event(user, channel, event [, locale, info]) -> status, why its
 * turn failed or nil: an event (an agent's action, a page visit) goes into
 * the session the way agent.c and webchat.c put it, with the message's
 * locale and channel info (the web chat's page) when given. */
static int native_event(lua_State *L) {
    pl_app *app = app_of(L);
    pl_bot *bot = pl_app_bot(app, 0);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *locale = luaL_optstring(L, 4, NULL);
    if (!lua_isnoneornil(L, 5)) luaL_checktype(L, 5, LUA_TTABLE);
    char *err = NULL;
    json_t *event = pl_json_from_lua(L, 3, "event", &err);
    json_t *info = event && lua_istable(L, 5) ? pl_json_from_lua(L, 5, "info", &err) : NULL;
    if (!event || (lua_istable(L, 5) && !info)) {
        json_decref(event);
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    pl_message *msg = pl_message_new(pl_bot_name(bot), luaL_checkstring(L, 2), luaL_checkstring(L, 1));
    msg->event = event;
    msg->locale = locale ? pl_strdup(locale) : NULL;
    msg->channel_info = info;
    delivery d = {NULL, 0, NULL};
    pl_pipeline_post(pl_app_pipeline(app), bot, msg, on_deliver, &d);
    pl_app_drain(app);
    json_decref(d.replies);
    lua_pushinteger(L, d.status);
    push_turn_error(L, &d);
    return 2;
}

/* native.session(user [, channel]) -> the stored session table, or nil */
static int native_session(lua_State *L) {
    pl_app *app = app_of(L);
    pl_session_key key = {pl_bot_name(pl_app_bot(app, 0)), luaL_optstring(L, 2, "rest"),
                          luaL_checkstring(L, 1)};
    char *state = NULL, *err = NULL;
    if (pl_store_session_get(pl_app_store(app), &key, &state, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    json_t *j = state ? json_loads(state, 0, NULL) : NULL;
    free(state);
    if (!j) return 0;
    pl_json_push(L, j);
    json_decref(j);
    return 1;
}

/* native.transcript(user [, channel]) -> list of {direction, body} */
static int native_transcript(lua_State *L) {
    pl_app *app = app_of(L);
    pl_session_key key = {pl_bot_name(pl_app_bot(app, 0)), luaL_optstring(L, 2, "rest"),
                          luaL_checkstring(L, 1)};
    json_t *lines = NULL;
    char *err = NULL;
    if (pl_store_transcript_get(pl_app_store(app), &key, 1000, &lines, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    pl_json_push(L, lines);
    json_decref(lines);
    return 1;
}

/* native.events(user [, channel]) -> the shopper's analytics events, oldest
 * first: {name, props, step, conv, at} */
static int native_events(lua_State *L) {
    pl_app *app = app_of(L);
    const char *user = luaL_checkstring(L, 1), *channel = luaL_optstring(L, 2, "rest");
    pl_store_events_query q = {.bot = pl_bot_name(pl_app_bot(app, 0)), .from_ms = INT64_MIN, .to_ms = INT64_MAX,
                               .channel = channel, .after_at = INT64_MIN, .limit = 100000};
    json_t *rows = NULL;
    char *err = NULL;
    if (pl_store_events_read(pl_app_store(app), &q, &rows, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    json_t *out = json_array();
    size_t i, j;
    json_t *row, *event;
    json_array_foreach(rows, i, row) {
        if (strcmp(json_string_value(json_object_get(row, "user")), user) != 0) continue;
        json_t *list = pl_analytics_row_events(json_string_value(json_object_get(row, "names")),
                                               json_string_value(json_object_get(row, "list")),
                                               json_string_value(json_object_get(row, "step")));
        json_array_foreach(list, j, event) {
            if (json_is_string(json_object_get(row, "step")))
                json_object_set(event, "step", json_object_get(row, "step"));
            json_object_set(event, "conv", json_object_get(row, "conv"));
            json_object_set(event, "at", json_object_get(row, "at"));
            json_array_append(out, event);
        }
        json_decref(list);
    }
    json_decref(rows);
    pl_json_push(L, out);
    json_decref(out);
    return 1;
}

static void on_erase(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)msg;
    (void)result;
    *(int *)ud = status;
}

/* native.erase(user [, channel]) -> true if a session was erased */
static int native_erase(lua_State *L) {
    pl_app *app = app_of(L);
    int status = 0;
    pl_pipeline_erase(pl_app_pipeline(app), pl_app_bot(app, 0), luaL_optstring(L, 2, "rest"),
                      luaL_checkstring(L, 1), on_erase, &status);
    pl_app_drain(app);
    if (status == 503) return luaL_error(L, "the session could not be erased");
    lua_pushboolean(L, status == 200);
    return 1;
}

/* native.errors() -> the warning and error lines logged since the last call */
static int native_errors(lua_State *L) {
    pl_json_push(L, logged);
    json_array_clear(logged);
    return 1;
}

typedef struct {
    int status;
    char *problems;
} applied_result;

static void on_applied(int status, const char *problems, void *ud) {
    applied_result *r = ud;
    r->status = status;
    r->problems = problems ? pl_strdup(problems) : NULL;
}

/* native.confirm(order_id, status [, amount, currency]) -> http-like status, problems
 * A provider's confirmation through the real path (as the test provider's
 * page or a webhook would send it); amount and currency default to the
 * order's own. */
static int native_confirm(lua_State *L) {
    pl_app *app = app_of(L);
    pl_bot *bot = pl_app_bot(app, 0);
    lua_Integer id = luaL_checkinteger(L, 1);
    const char *status = luaL_checkstring(L, 2);
    json_t *order = NULL;
    char *err = NULL;
    if (pl_store_order_get(pl_app_store(app), pl_bot_name(bot), id, &order, &err) != PL_OK || !order) {
        free(err);
        return luaL_error(L, "no order %d", (int)id);
    }
    json_t *conf = json_pack("{s:I, s:s}", "order_id", (json_int_t)id, "status", status);
    json_object_set_new(conf, "amount", lua_isinteger(L, 3) ? json_integer(lua_tointeger(L, 3))
                                                           : json_incref(json_object_get(order, "total")));
    json_object_set_new(conf, "currency", lua_isstring(L, 4) ? json_string(lua_tostring(L, 4))
                                                             : json_incref(json_object_get(order, "currency")));
    json_decref(order);
    applied_result r = {0, NULL};
    pl_commerce_confirm(pl_app_commerce(app), bot, json_pack("[o]", conf), on_applied, &r);
    pl_app_drain(app);
    lua_pushinteger(L, r.status);
    if (r.problems) lua_pushstring(L, r.problems);
    else lua_pushnil(L);
    free(r.problems);
    return 2;
}

/* native.update(order_id, status [, tracking_url]) -> status: the merchant's
 * orders API, through the real path. */
static int native_update(lua_State *L) {
    pl_app *app = app_of(L);
    applied_result r = {0, NULL};
    pl_commerce_update(pl_app_commerce(app), pl_app_bot(app, 0), luaL_checkinteger(L, 1), luaL_checkstring(L, 2),
                       luaL_optstring(L, 3, NULL), on_applied, &r);
    pl_app_drain(app);
    free(r.problems);
    lua_pushinteger(L, r.status);
    return 1;
}

/* native.order(id) -> the stored order, or nil */
static int native_order(lua_State *L) {
    pl_app *app = app_of(L);
    json_t *order = NULL;
    char *err = NULL;
    if (pl_store_order_get(pl_app_store(app), pl_bot_name(pl_app_bot(app, 0)), luaL_checkinteger(L, 1), &order,
                           &err) != PL_OK) {
        free(err);
        return 0;
    }
    if (!order) return 0;
    pl_json_push(L, order);
    json_decref(order);
    return 1;
}

/* native.jobs(user [, channel]) -> the session's pending jobs */
static int native_jobs(lua_State *L) {
    pl_app *app = app_of(L);
    json_t *jobs = NULL;
    char *err = NULL;
    if (pl_store_jobs_of(pl_app_store(app), pl_bot_name(pl_app_bot(app, 0)), luaL_optstring(L, 2, "rest"),
                         luaL_checkstring(L, 1), &jobs, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    pl_json_push(L, jobs);
    json_decref(jobs);
    return 1;
}

/* How far the specs may move parley's clock from now, either way: a
 * thousand years (a hostile replay file's "at" stays a time). */
#define MAX_ADVANCED_MS ((int64_t)1000 * 366 * 24 * 3600 * 1000)

/* ms, clamped so that the clock stays within MAX_ADVANCED_MS of where the
 * world began (a NaN moves nothing). */
static int64_t clamped_move(const spec_world *world, double ms) {
    double lo = (double)(-MAX_ADVANCED_MS - world->advanced_ms), hi = (double)(MAX_ADVANCED_MS - world->advanced_ms);
    if (!(ms == ms)) return 0;
    if (ms < lo) return -MAX_ADVANCED_MS - world->advanced_ms;
    if (ms > hi) return MAX_ADVANCED_MS - world->advanced_ms;
    return (int64_t)ms;
}

/* native.advance(seconds): moves parley's clock and lets what fell due run
 * (jobs fire, their turns commit); at most a thousand years from now. */
static int native_advance(lua_State *L) {
    spec_world *world = world_of(L);
    pl_app *app = app_of(L);
    int64_t ms = clamped_move(world, luaL_checknumber(L, 1) * 1000);
    pl_clock_advance(ms);
    world->advanced_ms += ms;
    for (int round = 0; round < 20; round++) {
        pl_app_clock_moved(app);
        event_base_loop(pl_app_base(app), EVLOOP_NONBLOCK);
        if (pl_pipeline_pending(pl_app_pipeline(app)) == 0) break;
        pl_app_drain(app);
    }
    return 0;
}

/* native.stock(key, n): what is left of a stocked product ("sku") or
 * option choice ("sku/option=value") becomes n, in the store and live, as
 * if other shoppers had bought the rest. */
static int native_stock(lua_State *L) {
    pl_app *app = app_of(L);
    pl_bot *bot = pl_app_bot(app, 0);
    const char *key = luaL_checkstring(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    json_t *live = json_object_get(pl_bot_stock(bot), key);
    if (!live) return luaL_error(L, "testing.stock: '%s' has no stock in the catalog", key);
    int64_t left = 0;
    int tracked = 0;
    char *err = NULL;
    pl_store *store = pl_app_store(app);
    if (pl_store_stock_take(store, pl_bot_name(bot), key, json_integer_value(live) - n, &left, &tracked, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    json_object_set_new(pl_bot_stock(bot), key, json_integer(left));
    return 0;
}

/* native.now() -> parley's clock (ms since the epoch; testing.advance moves it) */
static int native_now(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)pl_now_ms());
    return 1;
}

/* native.lines(user, channel, after_id) -> the transcript lines after line
 * after_id (0: all), oldest first: {id, at, direction, body} */
static int native_lines(lua_State *L) {
    pl_app *app = app_of(L);
    pl_session_key key = {pl_bot_name(pl_app_bot(app, 0)), luaL_checkstring(L, 2), luaL_checkstring(L, 1)};
    json_t *lines = NULL;
    char *err = NULL;
    if (pl_store_transcript_since(pl_app_store(app), &key, luaL_checkinteger(L, 3), 100000, &lines, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    return pl_json_push_owned(L, lines);
}

/* native.orders(user, channel) -> the numbers of the shopper's orders, oldest first */
static int native_orders(lua_State *L) {
    pl_app *app = app_of(L);
    json_t *orders = NULL;
    char *err = NULL;
    if (pl_store_orders_of(pl_app_store(app), pl_bot_name(pl_app_bot(app, 0)), luaL_checkstring(L, 2),
                           luaL_checkstring(L, 1), 10000, &orders, &err) != PL_OK) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    size_t n = json_array_size(orders);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)json_integer_value(json_object_get(json_array_get(orders, n - 1 - i), "id")));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    json_decref(orders);
    return 1;
}

/* native.dir() -> the bot's folder as `parley test` was given it (from
 * where it was run), or its full path */
static int native_dir(lua_State *L) {
    spec_world *world = world_of(L);
    lua_pushstring(L, world->shown_dir ? world->shown_dir : world->dir);
    return 1;
}

/* native.understand(text, locale) -> what c:understand makes of the text
 * (engine.understand: skus for products), or raises why not */
static int native_understand(lua_State *L) {
    json_t *arg = json_pack("{s:s}", "text", luaL_checkstring(L, 1));
    if (!lua_isnoneornil(L, 2)) json_object_set_new(arg, "locale", json_string(luaL_checkstring(L, 2)));
    char *err = NULL;
    json_t *got = pl_bot_ask_engine_whole(pl_app_bot(app_of(L), 0), "understand", arg, &err);
    json_decref(arg);
    if (!got) {
        lua_pushstring(L, err ? err : "understand failed");
        free(err);
        return lua_error(L);
    }
    return pl_json_push_owned(L, got);
}

/* native.bot() -> name, load error or nil */
static int native_bot(lua_State *L) {
    pl_bot *bot = pl_app_bot(app_of(L), 0);
    lua_pushstring(L, pl_bot_name(bot));
    if (pl_bot_error(bot)) lua_pushstring(L, pl_bot_error(bot));
    else lua_pushnil(L);
    return 2;
}

/* Opens the world's app (its bot loaded from its files) and, with
 * --coverage, has the bot's state count what it reaches. */
static int open_app(spec_world *world, char **err) {
    if (pl_app_open(&world->config, &world->app, err) != PL_OK) {
        world->app = NULL;
        return PL_ERR;
    }
    pl_bot *bot = pl_app_bot(world->app, 0);
    char *why = NULL;
    if (world->coverage && !pl_bot_vm(bot)) pl_coverage_note_unloaded(world->coverage, pl_bot_error(bot));
    if (world->coverage && pl_bot_vm(bot) && pl_coverage_watch(bot, &why) != PL_OK) {
        fprintf(stderr, "parley test: coverage: %s\n", why);
        free(why);
    }
    return PL_OK;
}

/* Closes the world's app, first adding what its bot reached to coverage. */
static void close_app(spec_world *world) {
    if (!world->app) return;
    pl_bot *bot = pl_app_bot(world->app, 0);
    char *why = NULL;
    if (world->coverage && pl_bot_vm(bot) && pl_coverage_gather(world->coverage, bot, &why) != PL_OK) {
        fprintf(stderr, "parley test: coverage: %s\n", why);
        free(why);
    }
    pl_app_close(world->app);
    world->app = NULL;
}

/* native.reset(): the bot starts afresh, as for the first spec: a new empty
 * store (sessions, transcripts, orders, jobs, events), the catalog's stock,
 * scripts loaded anew, parley's clock back to now and no logged errors. */
static int native_reset(lua_State *L) {
    spec_world *world = world_of(L);
    json_array_clear(logged);
    if (world->fresh) return 0; /* (as it is after the file's or block's reset) */
    close_app(world);
    pl_clock_advance(-world->advanced_ms);
    world->advanced_ms = 0;
    char *err = NULL;
    if (open_app(world, &err) != PL_OK) {
        lua_pushfstring(L, "testing: the bot could not start afresh: %s", err);
        free(err);
        return lua_error(L);
    }
    /* (its load's warnings were shown when the first app opened) */
    json_array_clear(logged);
    world->fresh = 1;
    return 0;
}

static int open_native(lua_State *L) {
    static const luaL_Reg fns[] = {{"send", native_send},
                                   {"event", native_event},
                                   {"stock", native_stock},
                                   {"session", native_session},
                                   {"transcript", native_transcript},
                                   {"events", native_events},
                                   {"erase", native_erase},
                                   {"confirm", native_confirm},
                                   {"update", native_update},
                                   {"order", native_order},
                                   {"jobs", native_jobs},
                                   {"advance", native_advance},
                                   {"errors", native_errors},
                                   {"bot", native_bot},
                                   {"understand", native_understand},
                                   {"dir", native_dir},
                                   {"reset", native_reset},
                                   {"now", native_now},
                                   {"lines", native_lines},
                                   {"orders", native_orders},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* os.exit inside busted ends the run, not the process: it raises a marked
 * error that run_busted turns into the exit code. */
static int spec_exit(lua_State *L) {
    int code = lua_isboolean(L, 1) ? !lua_toboolean(L, 1) : (int)luaL_optinteger(L, 1, 0);
    lua_pushinteger(L, code);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &exit_key);
    lua_pushlightuserdata(L, (void *)&exit_key);
    return lua_error(L);
}

/* busted's command line: the options given, then the statement that has
 * parley.testing hook every spec's start (busted runs -e statements once
 * its core is up and before any spec file loads), then the spec folder,
 * as spec/ in the bot's folder (busted works there), so that messages name
 * spec/x_spec.lua:12 the way they name flows/x.lua:12, never cut short. */
static const char hooks[] = "require('parley.testing').install_hooks(require('busted'))";

static void set_args(lua_State *L, const char *bot_dir, int argc, char **argv) {
    lua_createtable(L, argc + 4, 1);
    lua_pushliteral(L, "parley test");
    lua_rawseti(L, -2, 0);
    int n = 0;
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, ++n);
    }
    lua_pushliteral(L, "-e");
    lua_rawseti(L, -2, ++n);
    lua_pushstring(L, hooks);
    lua_rawseti(L, -2, ++n);
    lua_pushfstring(L, "--directory=%s", bot_dir);
    lua_rawseti(L, -2, ++n);
    lua_pushliteral(L, "spec");
    lua_rawseti(L, -2, ++n);
    lua_setglobal(L, "arg");
}

lua_State *pl_spec_state(pl_spec *world) {
    lua_State *L = luaL_newstate();
    *(void **)lua_getextraspace(L) = NULL;
    luaL_openlibs(L);
    pl_modules_register(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_native);
    lua_setfield(L, -2, "parley.testing.native");
    lua_pop(L, 1);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, spec_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    lua_pushlightuserdata(L, world);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &world_key);
    return L;
}

int pl_spec_exit_code(lua_State *L, int *code) {
    if (lua_touserdata(L, -1) != (void *)&exit_key) return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &exit_key);
    *code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return 1;
}

/* busted, with the files of spec/replays/ as tests beside the specs
 * (parley.replay's busted_files) */
static const char runner[] = "require 'parley.replay'.busted_files()\n"
                             "require 'busted.runner'({ standalone = false })";

static int run_busted(spec_world *world, const char *bot_dir, int argc, char **argv) {
    lua_State *L = pl_spec_state(world);
    set_args(L, bot_dir, argc, argv);
    int rc = 0;
    if (luaL_loadbuffer(L, runner, sizeof runner - 1, "=(parley test)") != LUA_OK ||
        lua_pcall(L, 0, 0, 0) != LUA_OK) {
        if (!pl_spec_exit_code(L, &rc)) {
            const char *msg = lua_tostring(L, -1);
            fprintf(stderr, "parley test: %s\n", msg ? msg : "busted failed");
            if (msg && strstr(msg, "busted.runner"))
                fprintf(stderr, "parley test: is busted installed? (Debian: apt-get install lua-busted)\n");
            rc = 1;
        }
    }
    lua_close(L);
    return rc;
}

/* Takes --coverage[=FILE] out of the arguments meant for busted (whose own
 * --coverage, LuaCov, could not see into the bot's sandboxed states).
 * Returns whether it was given; *file is its FILE or NULL. */
static int take_coverage_option(int *argc, char **argv, const char **file) {
    int given = 0, kept = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--coverage") == 0) {
            given = 1;
        } else if (strncmp(argv[i], "--coverage=", 11) == 0) {
            given = 1;
            *file = argv[i] + 11;
        } else {
            argv[kept++] = argv[i];
        }
    }
    *argc = kept;
    return given;
}

/* The coverage report: text on stdout, and JSON to file ("-": stdout,
 * instead of the text). Returns 0, or 1 when the file cannot be written. */
static int report_coverage(const pl_coverage *cov, const char *file) {
    if (!file || strcmp(file, "-") != 0) pl_coverage_print(cov, stdout);
    if (!file) return 0;
    json_t *report = pl_coverage_json(cov);
    int rc = 0;
    if (strcmp(file, "-") == 0) {
        json_dumpf(report, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    } else if (json_dump_file(report, file, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
        fprintf(stderr, "parley test: cannot write the coverage report to %s\n", file);
        rc = 1;
    }
    json_decref(report);
    return rc;
}

int pl_spec_open(const char *dir, int coverage, pl_spec **out, char **err) {
    pl_spec *world = calloc(1, sizeof *world);
    world->dir = pl_strdup(dir);
    /* offline: a spec or a replayed conversation on WhatsApp never messages a real shopper */
    world->config = (pl_app_config){.db_path = ":memory:", .sync = PL_SYNC_NORMAL, .bot_dirs = &world->dir,
                                    .nbots = 1, .watch = 0, .offline = 1};
    world->coverage = coverage ? pl_coverage_new() : NULL;
    pl_log_set_level(PL_LOG_WARN);
    logged = json_array();
    /* one bot and no neighbours to protect: its share of the loop is all of it */
    pl_usage_set_policy(&(pl_usage_policy){1.0, INT64_MAX / 4});
    if (open_app(world, err) != PL_OK) {
        pl_spec_close(world);
        return PL_ERR;
    }
    /* (the first load's warnings were shown; from now on they are kept) */
    pl_log_set_sink(capture_log, NULL, 1);
    world->fresh = 1;
    *out = world;
    return PL_OK;
}

pl_app *pl_spec_app(pl_spec *world) { return world->app; }

void pl_spec_close(pl_spec *world) {
    if (!world) return;
    pl_log_set_sink(NULL, NULL, 0);
    close_app(world);
    pl_clock_advance(-world->advanced_ms);
    pl_coverage_free(world->coverage);
    free(world->dir);
    free(world->shown_dir);
    free(world);
    json_decref(logged);
    logged = NULL;
}

/* Runs the specs in a world whose first app is open; returns the exit code. */
static int run_specs(spec_world *world, const char *bot_dir, int argc, char **argv, const char *coverage_file) {
    char *cwd = getcwd(NULL, 0); /* (busted moves to the bot's folder) */
    int rc = run_busted(world, bot_dir, argc, argv);
    if (cwd && chdir(cwd) != 0) fprintf(stderr, "parley test: cannot return to %s\n", cwd);
    free(cwd);
    close_app(world); /* (adds the last app's reach to coverage) */
    fflush(stdout);
    if (world->coverage && report_coverage(world->coverage, coverage_file) != 0 && rc == 0) rc = 1;
    return rc;
}
int pl_cmd_test(int argc, char **argv) {
    int first = 1;
    const char *dir = NULL;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(test_usage, stdout);
        return 0;
    }
    if (argc > 1 && argv[1][0] != '-') {
        dir = argv[1];
        first = 2;
    }
    int nargs = argc - first;
    const char *coverage_file = NULL;
    int coverage = take_coverage_option(&nargs, argv + first, &coverage_file);
    char *default_dir = dir ? NULL : pl_cli_default_bot();
    if (!dir) dir = default_dir;
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(default_dir);
        return pl_cli_usage_error("test", "%s: no such folder", dir ? dir : "(no bot.json here)");
    }
    char *real = realpath(dir, NULL);
    char *spec_dir = pl_strdupf("%s/spec", real);
    int rc;
    if (stat(spec_dir, &st) != 0) {
        rc = pl_cli_usage_error("test", "%s: no spec folder", spec_dir);
    } else {
        pl_spec *world = NULL;
        char *err = NULL;
        if (pl_spec_open(real, coverage, &world, &err) != PL_OK) {
            fprintf(stderr, "parley test: %s\n", err);
            free(err);
            rc = 1;
        } else {
            world->shown_dir = pl_strdup(dir);
            rc = run_specs(world, real, nargs, argv + first, coverage_file);
            pl_spec_close(world);
        }
    }
    free(spec_dir);
    free(real);
    free(default_dir);
    return rc;
}
