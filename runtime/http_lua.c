/* http_lua: the C half of the `http` module — allow-list check, starting
 * the request on the shared client and waking the turn with the answer;
 * see http_lua.h. runtime/lua/http.lua is the friendly half. */
#include "http_lua.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json_lua.h"
#include "turn.h"

static pl_http_client *client;
static const char allow_key = 'h';

void pl_http_lua_use(pl_http_client *c) { client = c; }

void pl_http_lua_set_allow(lua_State *L, const json_t *allow) {
    if (json_is_array(allow)) pl_json_push(L, allow);
    else lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &allow_key);
}

static int allowed(lua_State *L, const char *url) {
    int ok = 0;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &allow_key) == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n && !ok; i++) {
            lua_rawgeti(L, -1, i);
            size_t len;
            const char *prefix = lua_tolstring(L, -1, &len);
            ok = prefix && len > 0 && strncmp(url, prefix, len) == 0;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return ok;
}

typedef struct {
    pl_turn *turn;
    long status;
    char *body;
    size_t body_len;
    char *error;
    char *content_type;
} pending;

static int push_answer(lua_State *co, void *ud) {
    pending *p = ud;
    int n;
    if (p->status == 0) {
        lua_pushnil(co);
        const char *why = p->error && strstr(p->error, "imed out") ? "timeout" : "unreachable";
        lua_pushstring(co, why);
        n = 2;
    } else {
        lua_createtable(co, 0, 3);
        lua_pushinteger(co, p->status);
        lua_setfield(co, -2, "status");
        lua_pushlstring(co, p->body ? p->body : "", p->body_len);
        lua_setfield(co, -2, "body");
        n = 1;
    }
    free(p->body);
    free(p->error);
    free(p);
    return n;
}

static void on_answer(const pl_http_response *res, void *ud) {
    pending *p = ud;
    p->status = res->status;
    p->body = pl_strndup(res->body, res->body_len);
    p->body_len = res->body_len;
    p->error = res->error ? pl_strdup(res->error) : NULL;
    pl_turn_wake(p->turn, push_answer, p);
}

/* Raises msg at the script's line: level 2 is the caller of the `http`
 * module's function that called this one. */
static int script_error(lua_State *L, const char *fmt, const char *arg) {
    luaL_where(L, 2);
    lua_pushfstring(L, fmt, arg);
    lua_concat(L, 2);
    return lua_error(L);
}

/* allowed(url) -> whether the bot's allow list covers url */
static int http_allowed(lua_State *L) {
    lua_pushboolean(L, allowed(L, luaL_checkstring(L, 1)));
    return 1;
}

/* request(method, url, headers, body, timeout_ms) -> {status, body} | nil, reason */
static int http_request(lua_State *L) {
    const char *method = luaL_checkstring(L, 1);
    const char *url = luaL_checkstring(L, 2);
    size_t body_len = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &body_len);
    lua_Integer timeout = luaL_optinteger(L, 5, 10000);
    pl_turn *turn = pl_turn_current(L);
    if (!turn) return script_error(L, "http: %s: requests can only be made while handling a message", url);
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return script_error(L, "http: '%s' is not an http(s) URL", url);
    if (!allowed(L, url))
        return script_error(L, "http: %s is not under any prefix of \"http\": {\"allow\": [...]} in bot.json", url);
    if (!client) return script_error(L, "http: %s: no outbound client in this process", url);
    char *err = NULL;
    json_t *headers = lua_istable(L, 3) ? pl_json_from_lua(L, 3, "headers", &err) : json_object();
    if (!headers) {
        lua_pushfstring(L, "http: %s", err);
        free(err);
        return lua_error(L);
    }
    pending *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->turn = turn;
    pl_http_request req = {.method = method, .url = url, .headers = headers, .body = body,
                           .body_len = body_len, .timeout_ms = (long)timeout};
    int rc = pl_http_fetch(client, &req, on_answer, p, &err);
    json_decref(headers);
    if (rc != PL_OK) {
        free(p);
        lua_pushnil(L);
        lua_pushstring(L, "unreachable");
        free(err);
        return 2;
    }
    return pl_turn_wait(L, turn);
}

int pl_http_lua_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"request", http_request}, {"allowed", http_allowed}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
