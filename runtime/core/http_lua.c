/* http_lua: the C half of the `http` module — the allow-list check (rules
 * and matching are http_policy.c's), the host's caps, starting the request
 * on the shared client and waking the turn with the answer; see
 * http_lua.h. runtime/lua/http.lua is the friendly half. */
#include "http_lua.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "event/http_policy.h"
#include "event/workers.h"
#include "sandbox/json_lua.h"
#include "turn.h"

static pl_http_client *client;
static int private_allowed = -1; /* -1: not said yet, the environment decides */
static const char allow_key = 'h';

void pl_http_lua_use(pl_http_client *c) { client = c; }

void pl_http_lua_allow_private(int allowed) { private_allowed = allowed != 0; }

pl_http_client *pl_http_lua_client(void) { return client; }

int pl_http_lua_private_allowed(void) {
    if (private_allowed < 0) {
        const char *env = getenv("PARLEY_ALLOW_PRIVATE_HTTP");
        private_allowed = env && strcmp(env, "1") == 0;
    }
    return private_allowed;
}

/* --- the allow list ------------------------------------------------------------ */

/* The registry keeps the entries that parse as their text; each request
 * parses them again (a few curl_url calls next to a network round trip). */
void pl_http_lua_set_allow(lua_State *L, const json_t *http, pl_errors *errors) {
    const json_t *allow = json_object_get(http, "allow");
    lua_newtable(L);
    if (http && !json_is_object(http))
        pl_errors_add(errors, "bot.json: http: must be an object such as {\"allow\": [\"https://api.example/\"]}");
    else if (allow && !json_is_array(allow))
        pl_errors_add(errors, "bot.json: http.allow: must be a list of URLs");
    size_t i;
    const json_t *entry;
    lua_Integer n = 0;
    json_array_foreach(json_is_array(allow) ? allow : NULL, i, entry) {
        pl_url rule;
        char *err = NULL;
        const char *text = json_string_value(entry);
        if (!text) {
            pl_errors_add(errors, "bot.json: http.allow[%zu]: must be a URL (a string)", i);
        } else if (pl_http_rule_parse(text, &rule, &err) != PL_OK) {
            pl_errors_add(errors, "bot.json: http.allow[%zu]: %s (\"%s\")", i, err, text);
            free(err);
        } else {
            pl_url_clear(&rule);
            lua_pushstring(L, text);
            lua_rawseti(L, -2, ++n);
        }
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &allow_key);
}

static int allowed(lua_State *L, const pl_url *target) {
    int ok = 0;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &allow_key) == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n && !ok; i++) {
            lua_rawgeti(L, -1, i);
            pl_url rule;
            if (pl_http_rule_parse(lua_tostring(L, -1), &rule, NULL) == PL_OK) {
                ok = pl_http_rule_covers(&rule, target);
                pl_url_clear(&rule);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return ok;
}

/* --- the answer ---------------------------------------------------------------- */

typedef struct {
    pl_turn *turn;
    char *host; /* for the log */
    pl_http_outcome outcome;
    long status;
    char *body;
    size_t body_len;
} pending;

int pl_http_lua_push_answer(lua_State *co, pl_http_outcome outcome, long status, const char *body, size_t len) {
    if (outcome != PL_HTTP_ANSWERED) {
        lua_pushnil(co);
        switch (outcome) {
        case PL_HTTP_TIMEOUT: lua_pushliteral(co, "timeout"); break;
        case PL_HTTP_REFUSED: lua_pushliteral(co, "refused"); break;
        case PL_HTTP_TOO_LARGE: lua_pushliteral(co, "too-large"); break;
        default: lua_pushliteral(co, "unreachable"); break;
        }
        return 2;
    }
    lua_createtable(co, 0, 3);
    lua_pushinteger(co, status);
    lua_setfield(co, -2, "status");
    lua_pushlstring(co, body ? body : "", len);
    lua_setfield(co, -2, "body");
    return 1;
}

static int push_answer(lua_State *co, void *ud) {
    pending *p = ud;
    int n = pl_http_lua_push_answer(co, p->outcome, p->status, p->body, p->body_len);
    free(p->body);
    free(p->host);
    free(p);
    return n;
}

static void on_answer(const pl_http_response *res, void *ud) {
    pending *p = ud;
    p->outcome = res->outcome;
    p->status = res->status;
    if (res->outcome == PL_HTTP_ANSWERED) {
        p->body = pl_strndup(res->body, res->body_len);
        p->body_len = res->body_len;
    } else if (res->outcome == PL_HTTP_REFUSED) {
        /* the operator's business: a script probing the host's own network */
        pl_warn("[%s] http: request to %s refused: %s (loopback and private addresses are not for "
                "scripts; see --allow-private-http)",
                pl_bot_name(pl_turn_bot(p->turn)), p->host, res->error ? res->error : "?");
    }
    pl_turn_wake(p->turn, push_answer, p);
}

/* --- the request ----------------------------------------------------------------- */

/* Raises msg at the script's line: level 2 is the caller of the `http`
 * module's function that called this one. */
static int script_error(lua_State *L, const char *fmt, const char *arg) {
    luaL_where(L, 2);
    lua_pushfstring(L, fmt, arg);
    lua_concat(L, 2);
    return lua_error(L);
}

/* Parses url into *target if the bot may call it; else raises. */
static void check_url(lua_State *L, const char *url, pl_url *target) {
    char *err = NULL;
    if (pl_http_target_parse(url, target, &err) != PL_OK) {
        luaL_where(L, 2);
        lua_pushfstring(L, "http: %s: %s", url, err);
        free(err);
        lua_concat(L, 2);
        lua_error(L);
    }
    if (!allowed(L, target)) {
        pl_url_clear(target);
        script_error(L, "http: %s is not under any entry of \"http\": {\"allow\": [...]} in bot.json", url);
    }
}

/* allowed(url) -> whether the bot's allow list covers url */
static int http_allowed(lua_State *L) {
    pl_url target;
    int ok = pl_http_target_parse(luaL_checkstring(L, 1), &target, NULL) == PL_OK;
    lua_pushboolean(L, ok && allowed(L, &target));
    if (ok) pl_url_clear(&target);
    return 1;
}

/* Starts the request (target's URL, the host's caps); PL_OK or PL_ERR. */
static int start(pl_turn *turn, const pl_url *target, const char *method, const json_t *headers,
                 const char *body, size_t body_len, long timeout_ms) {
    pending *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->turn = turn;
    p->host = pl_strdup(target->host);
    pl_http_request req = {.method = method, .url = target->url, .headers = headers, .body = body,
                           .body_len = body_len, .timeout_ms = timeout_ms,
                           .max_response = PL_HTTP_SCRIPT_MAX_RESPONSE,
                           .public_only = !pl_http_lua_private_allowed()};
    char *err = NULL;
    if (pl_http_fetch(client, &req, on_answer, p, &err) == PL_OK) return PL_OK;
    free(err);
    free(p->host);
    free(p);
    return PL_ERR;
}

/* start() on the loop, which owns the outbound client (a turn thread
 * waits for it: workers.h). */
typedef struct {
    pl_turn *turn;
    const pl_url *target;
    const char *method;
    const json_t *headers;
    const char *body;
    size_t body_len;
    long timeout_ms;
    int rc;
} start_call;

static void start_on_loop(void *arg) {
    start_call *c = arg;
    c->rc = start(c->turn, c->target, c->method, c->headers, c->body, c->body_len, c->timeout_ms);
}

/* request(method, url, headers, body, timeout_ms) -> {status, body} | nil, reason */
static int http_request(lua_State *L) {
    const char *method = luaL_checkstring(L, 1);
    const char *url = luaL_checkstring(L, 2);
    size_t body_len = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &body_len);
    lua_Integer timeout = luaL_optinteger(L, 5, PL_HTTP_SCRIPT_MAX_TIMEOUT_MS);
    pl_turn *turn = pl_turn_current(L);
    if (!turn) return script_error(L, "http: %s: requests can only be made while handling a message", url);
    if (!client) return script_error(L, "http: %s: no outbound client in this process", url);
    if (body_len > PL_HTTP_SCRIPT_MAX_BODY)
        return script_error(L, "http: %s: the body is larger than the host allows (1 MB)", url);
    if (timeout <= 0 || timeout > PL_HTTP_SCRIPT_MAX_TIMEOUT_MS) timeout = PL_HTTP_SCRIPT_MAX_TIMEOUT_MS;
    /* the answer must find a turn that waits for it: no request where the
     * turn cannot wait (a script's coroutine, a metamethod) */
    pl_turn_check_wait(L, turn);
    pl_url target;
    check_url(L, url, &target); /* raises, before anything is allocated */
    char *err = NULL;
    json_t *headers = lua_istable(L, 3) ? pl_json_from_lua(L, 3, "headers", &err) : json_object();
    if (!headers) {
        pl_url_clear(&target);
        lua_pushfstring(L, "http: %s", err);
        free(err);
        return lua_error(L);
    }
    start_call call = {turn, &target, method, headers, body, body_len, (long)timeout, PL_ERR};
    pl_turn_call_loop(L, start_on_loop, &call);
    int rc = call.rc;
    pl_url_clear(&target);
    json_decref(headers);
    if (rc != PL_OK) {
        lua_pushnil(L);
        lua_pushstring(L, "unreachable");
        return 2;
    }
    return pl_turn_wait(L, turn);
}

int pl_http_lua_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"request", http_request}, {"allowed", http_allowed}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
