/* spec: `parley test` — runs a bot's spec/NAME_spec.lua files (and the
 * recorded conversations of spec/replays/) with busted inside the runtime,
 * the way Kong runs busted under its own interpreter. The specs run in a
 * plain Lua state (busted needs io and os); the bot runs in its real
 * sandboxed state, with the real pipeline and an in-memory store, offline,
 * reached through the `parley.testing` module. That spec runtime is
 * spec.h's, which `parley replay` (replay.c) runs in too. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/analytics.h"
#include "app/app.h"
#include "base/common.h"
#include "base/log.h"
#include "cli.h"
#include "commerce/commerce.h"
#include "core/modules.h"
#include "sandbox/json_lua.h"
#include "sandbox/usage.h"
#include "spec.h"

static const char test_usage[] =
    "usage: parley test [BOT_DIR] [BUSTED_OPTIONS ...]\n"
    "\n"
    "Runs BOT_DIR/spec/*_spec.lua with busted inside the parley runtime: the real\n"
    "flow engine, sandbox and store (in memory). Specs talk to the bot through\n"
    "require \"parley.testing\". Exits non-zero when a spec fails.\n"
    "Options after BOT_DIR go to busted, for example: -o TAP, --filter NAME.\n";

static const char app_key = 'a';
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
} delivery;

static pl_app *app_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &app_key);
    pl_app *app = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return app;
}

static void on_deliver(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)msg;
    delivery *d = ud;
    d->status = status;
    d->replies = json_incref(pl_turn_replies(result));
}

static void set_optional(lua_State *L, int t, const char *key, char **dst) {
    lua_getfield(L, t, key);
    if (!lua_isnil(L, -1)) *dst = pl_strdup(luaL_checkstring(L, -1));
    lua_pop(L, 1);
}

/* native.send{user =, channel =, text =, payload =, locale =, info =} -> replies */
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
    delivery d = {NULL, 0};
    pl_pipeline_post(pl_app_pipeline(app), bot, msg, on_deliver, &d);
    pl_app_drain(app);
    if (d.status != 200) return luaL_error(L, "the message was not committed (status %d)", d.status);
    pl_json_push(L, d.replies);
    json_decref(d.replies);
    return 1;
}

/* native.event(user, channel, event) -> status: an event (an agent's action,
 * a page visit) goes into the session the way agent.c and webchat.c put it. */
static int native_event(lua_State *L) {
    pl_app *app = app_of(L);
    pl_bot *bot = pl_app_bot(app, 0);
    luaL_checktype(L, 3, LUA_TTABLE);
    char *err = NULL;
    json_t *event = pl_json_from_lua(L, 3, "event", &err);
    if (!event) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    pl_message *msg = pl_message_new(pl_bot_name(bot), luaL_checkstring(L, 2), luaL_checkstring(L, 1));
    msg->event = event;
    delivery d = {NULL, 0};
    pl_pipeline_post(pl_app_pipeline(app), bot, msg, on_deliver, &d);
    pl_app_drain(app);
    json_decref(d.replies);
    lua_pushinteger(L, d.status);
    return 1;
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

/* native.advance(seconds): moves parley's clock and lets what fell due run
 * (jobs fire, their turns commit). */
static int native_advance(lua_State *L) {
    pl_app *app = app_of(L);
    pl_clock_advance((int64_t)(luaL_checknumber(L, 1) * 1000));
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

/* native.bot() -> name, load error or nil */
static int native_bot(lua_State *L) {
    pl_bot *bot = pl_app_bot(app_of(L), 0);
    lua_pushstring(L, pl_bot_name(bot));
    if (pl_bot_error(bot)) lua_pushstring(L, pl_bot_error(bot));
    else lua_pushnil(L);
    return 2;
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

static void set_args(lua_State *L, const char *spec_dir, int argc, char **argv) {
    lua_createtable(L, argc + 1, 1);
    lua_pushliteral(L, "parley test");
    lua_rawseti(L, -2, 0);
    int n = 0;
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, ++n);
    }
    lua_pushstring(L, spec_dir);
    lua_rawseti(L, -2, ++n);
    lua_setglobal(L, "arg");
}

lua_State *pl_spec_state(pl_app *app) {
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
    lua_pushlightuserdata(L, app);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &app_key);
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

static int run_busted(pl_app *app, const char *spec_dir, int argc, char **argv) {
    lua_State *L = pl_spec_state(app);
    set_args(L, spec_dir, argc, argv);
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

int pl_spec_open(const char *dir, pl_app **app, char **err) {
    pl_log_set_level(PL_LOG_WARN);
    logged = json_array();
    char *dirs[] = {(char *)dir};
    /* offline: a spec or a replayed conversation on WhatsApp never messages a real shopper */
    pl_app_config config = {.db_path = ":memory:", .sync = PL_SYNC_NORMAL, .bot_dirs = dirs, .nbots = 1,
                            .watch = 0, .offline = 1};
    /* one bot and no neighbours to protect: its share of the loop is all of it */
    pl_usage_set_policy(&(pl_usage_policy){1.0, INT64_MAX / 4});
    if (pl_app_open(&config, app, err) != PL_OK) {
        json_decref(logged);
        logged = NULL;
        return PL_ERR;
    }
    pl_log_set_sink(capture_log, NULL, 1);
    return PL_OK;
}

void pl_spec_close(pl_app *app) {
    pl_log_set_sink(NULL, NULL, 0);
    pl_app_close(app);
    json_decref(logged);
    logged = NULL;
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
    char *default_dir = dir ? NULL : pl_cli_default_bot();
    if (!dir) dir = default_dir;
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(default_dir);
        return pl_cli_usage_error("test", "%s: no such folder", dir ? dir : "(no bot.json here)");
    }
    char *real = realpath(dir, NULL);
    char *spec_dir = pl_strdupf("%s/spec", real);
    free(real);
    int rc;
    if (stat(spec_dir, &st) != 0) {
        rc = pl_cli_usage_error("test", "%s: no spec folder", spec_dir);
    } else {
        pl_app *app = NULL;
        char *err = NULL;
        if (pl_spec_open(dir, &app, &err) != PL_OK) {
            fprintf(stderr, "parley test: %s\n", err);
            free(err);
            rc = 1;
        } else {
            rc = run_busted(app, spec_dir, argc - first, argv + first);
            pl_spec_close(app);
        }
    }
    free(spec_dir);
    free(default_dir);
    return rc;
}
