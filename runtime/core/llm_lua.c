/* llm_lua: `parley.llm` — a state's settings of its bot's language model,
 * the request to it and the counts; see llm_lua.h. The rate, the budget and
 * the metrics are llm.c's; the request goes through http_lua.c's client. */
#include "llm_lua.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/secrets.h"
#include "event/http_client.h"
#include "event/http_policy.h"
#include "http_lua.h"
#include "llm.h"
#include "sandbox/json_lua.h"
#include "sandbox/run.h"
#include "sandbox/vm.h"
#include "turn.h"

#define SETTINGS_MT "parley.llm.settings"
static const char settings_key = 'l';

/* --- the settings: a json_t in a userdata of the registry ------------------------ */

static int settings_gc(lua_State *L) {
    json_t **s = luaL_checkudata(L, 1, SETTINGS_MT);
    json_decref(*s);
    *s = NULL;
    return 0;
}

void pl_llm_lua_setup(lua_State *L, const json_t *manifest) {
    json_t *settings = pl_llm_settings(manifest);
    if (!settings) return;
    pl_llm_metrics();
    json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = settings;
    if (luaL_newmetatable(L, SETTINGS_MT)) {
        lua_pushcfunction(L, settings_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &settings_key);
}

/* The state's settings (borrowed from the registry), or NULL. */
static const json_t *settings_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &settings_key);
    json_t **box = luaL_testudata(L, -1, SETTINGS_MT);
    lua_pop(L, 1);
    return box ? *box : NULL;
}

static const char *bot_of(lua_State *L) {
    pl_vm *vm = pl_vm_from_lua(L);
    return vm ? pl_vm_bot_name(vm) : "?";
}

/* settings() -> a copy, so no script can change what complete() uses */
static int llm_settings(lua_State *L) {
    const json_t *s = settings_of(L);
    if (!s) {
        lua_pushnil(L);
        return 1;
    }
    pl_json_push(L, s);
    return 1;
}

/* --- the answer --------------------------------------------------------------------- */

typedef struct {
    pl_turn *turn;
    char *bot;
    int64_t started_us;
    pl_http_outcome outcome;
    long status;
    char *body;
    size_t body_len;
    long long tokens;
} pending;

/* usage.total_tokens of an OpenAI answer's body, 0 when it has none. */
static long long tokens_of(const char *body, size_t len) {
    json_t *answer = json_loadb(body, len, 0, NULL);
    json_t *total = json_object_get(json_object_get(answer, "usage"), "total_tokens");
    long long n = json_is_integer(total) && json_integer_value(total) > 0 ? (long long)json_integer_value(total) : 0;
    json_decref(answer);
    return n;
}

static int push_answer(lua_State *co, void *ud) {
    pending *p = ud;
    int n = pl_http_lua_push_answer(co, p->outcome, p->status, p->body, p->body_len);
    if (n == 1) {
        lua_pushinteger(co, p->tokens);
        lua_setfield(co, -2, "tokens");
    }
    free(p->body);
    free(p->bot);
    free(p);
    return n;
}

/* On the loop: the tokens are spent and the time observed as soon as the
 * answer is in, whatever the turn does next. */
static void on_answer(const pl_http_response *res, void *ud) {
    pending *p = ud;
    p->outcome = res->outcome;
    p->status = res->status;
    pl_llm_latency(p->bot, (double)(pl_monotonic_us() - p->started_us) / 1e6);
    if (res->outcome == PL_HTTP_ANSWERED) {
        p->body = pl_strndup(res->body, res->body_len);
        p->body_len = res->body_len;
        p->tokens = tokens_of(res->body, res->body_len);
        pl_llm_spend(p->bot, p->tokens, pl_now_ms());
    } else if (res->outcome == PL_HTTP_REFUSED) {
        pl_warn("[%s] understanding.llm: the model's address was refused: %s (loopback and private addresses "
                "need the operator's --allow-private-http)",
                p->bot, res->error ? res->error : "?");
    }
    pl_turn_wake(p->turn, push_answer, p);
}

/* --- the request ---------------------------------------------------------------------- */

typedef struct {
    pending *p;
    const char *url;
    const json_t *headers;
    const char *body;
    size_t body_len;
    long timeout_ms;
    int rc;
} start_call;

static void start_on_loop(void *arg) {
    start_call *c = arg;
    pl_http_client *client = pl_http_lua_client();
    pl_http_request req = {.method = "POST", .url = c->url, .headers = c->headers, .body = c->body,
                           .body_len = c->body_len, .timeout_ms = c->timeout_ms,
                           .max_response = PL_HTTP_SCRIPT_MAX_RESPONSE,
                           .public_only = !pl_http_lua_private_allowed()};
    char *err = NULL;
    c->p->started_us = pl_monotonic_us();
    c->rc = client ? pl_http_fetch(client, &req, on_answer, c->p, &err) : PL_ERR;
    free(err);
}

/* {base_url}/chat/completions, parsed (the manifest's check passed it). */
static int completions_url(const json_t *s, pl_url *target) {
    const char *base = json_string_value(json_object_get(s, "base_url"));
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    char *url = pl_strdupf("%.*s/chat/completions", (int)n, base);
    int rc = pl_http_target_parse(url, target, NULL);
    free(url);
    return rc;
}

/* The headers of the request (new): JSON, and the bot's key when it names
 * one; NULL with *reason when the key is not in its environment. */
static json_t *request_headers(const char *bot, const json_t *s, const char **reason) {
    json_t *headers = json_pack("{ss}", "Content-Type", "application/json");
    const char *key_env = json_string_value(json_object_get(s, "api_key_env"));
    if (!key_env) return headers;
    const char *key = pl_secrets_get(bot, key_env);
    if (!key) {
        json_decref(headers);
        *reason = "no-key";
        return NULL;
    }
    char *bearer = pl_strdupf("Bearer %s", key);
    json_object_set_new(headers, "Authorization", json_string(bearer));
    free(bearer);
    return headers;
}

static int fail(lua_State *L, const char *reason) {
    lua_pushnil(L);
    lua_pushstring(L, reason);
    return 2;
}

/* complete(body) -> {status, body, tokens} | nil, reason */
static int llm_complete(lua_State *L) {
    size_t body_len;
    const char *body = luaL_checklstring(L, 1, &body_len);
    const json_t *s = settings_of(L);
    pl_turn *turn = pl_turn_current(L);
    if (!s) return luaL_error(L, "parley.llm: the bot's manifest names no model (understanding.llm)");
    if (!turn) return luaL_error(L, "parley.llm: the model can only be asked while handling a message");
    if (body_len > PL_HTTP_SCRIPT_MAX_BODY) return luaL_error(L, "parley.llm: the request is over 1 MB");
    pl_turn_check_wait(L, turn);
    const char *bot = bot_of(L), *reason = NULL;
    json_t *headers = request_headers(bot, s, &reason);
    if (!headers) return fail(L, reason);
    if (pl_llm_take(bot, (long)json_integer_value(json_object_get(s, "requests_per_minute")),
                    (long long)json_integer_value(json_object_get(s, "tokens_per_day")), pl_now_ms(),
                    &reason) != PL_OK) {
        json_decref(headers);
        return fail(L, reason);
    }
    pl_url target;
    if (completions_url(s, &target) != PL_OK) {
        json_decref(headers);
        return fail(L, "unreachable");
    }
    pending *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->turn = turn;
    p->bot = pl_strdup(bot);
    start_call call = {p, target.url, headers, body, body_len,
                       (long)json_integer_value(json_object_get(s, "timeout_ms")), PL_ERR};
    pl_turn_call_loop(L, start_on_loop, &call);
    pl_url_clear(&target);
    json_decref(headers);
    if (call.rc != PL_OK) {
        free(p->bot);
        free(p);
        return fail(L, "unreachable");
    }
    return pl_turn_wait(L, turn);
}

/* count(result): how an ask ended */
static int llm_count(lua_State *L) {
    pl_llm_count(bot_of(L), luaL_checkstring(L, 1));
    return 0;
}

static int llm_cache_hit(lua_State *L) {
    pl_llm_cache_hit(bot_of(L));
    return 0;
}

int pl_llm_lua_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"settings", llm_settings}, {"complete", llm_complete}, {"count", llm_count},
                                   {"cache_hit", llm_cache_hit}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
