/* test_json_lua: jansson <-> Lua conversion and the `json` module (json_lua.h),
 * on a plain Lua state, and the module in a bot's state under its budgets
 * (vm.h): no error path leaks (the sanitizer build's LeakSanitizer checks it
 * at exit, the plain build measures the heap), jansson's memory counts. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "bot_vm.h"
#include "check.h"
#include "sandbox/json_alloc.h"
#include "sandbox/json_lua.h"
#include "sandbox/vm.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan's own allocator holds the heap (mallinfo2 sees none of it); this is
 * its sanitizer/allocator_interface.h, which gcc does not install. */
size_t __sanitizer_get_current_allocated_bytes(void);
/* Bytes malloc'd by the process and not freed. */
static size_t heap_in_use(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
#include <malloc.h>
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd; /* small blocks + mmapped ones */
}
#endif

/* Runs code that returns one value and leaves it on the stack; 0 on error. */
static int eval(lua_State *L, const char *code) {
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        printf("#   lua error: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

/* Runs code returning a boolean with `v` bound to the value on top of the stack. */
static int lua_true(lua_State *L, const char *code) {
    int top = lua_gettop(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "v");
    int ok = eval(L, code) && lua_toboolean(L, -1);
    if (!ok) printf("#   not true: %s\n", code);
    lua_settop(L, top);
    return ok;
}

/* Converts the result of code to compact JSON text with sorted keys (new
 * string), or NULL with *err set. The stack is left as it was. */
static char *lua_to_text(lua_State *L, const char *code, const char *root, char **err) {
    int top = lua_gettop(L);
    if (!eval(L, code)) return NULL;
    json_t *j = pl_json_from_lua(L, -1, root, err);
    lua_pop(L, 1);
    if (lua_gettop(L) != top) printf("#   stack changed: %d -> %d\n", top, lua_gettop(L));
    CHECK(lua_gettop(L) == top);
    if (!j) return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(j);
    return text;
}

/* JSON text -> Lua -> JSON text. */
static char *round_trip(lua_State *L, const char *text) {
    json_error_t jerr;
    json_t *in = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!in) return NULL;
    int top = lua_gettop(L);
    pl_json_push(L, in);
    json_decref(in);
    CHECK(lua_gettop(L) == top + 1);
    char *err = NULL;
    json_t *out = pl_json_from_lua(L, -1, "value", &err);
    lua_pop(L, 1);
    if (!out) {
        printf("#   round trip of %s failed: %s\n", text, err);
        free(err);
        return NULL;
    }
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(out);
    return s;
}

/* Expects a refusal whose message contains every one of the fragments. */
static int refused(lua_State *L, const char *code, const char *root, const char *frag1,
                   const char *frag2) {
    char *err = NULL;
    char *text = lua_to_text(L, code, root, &err);
    int ok = text == NULL && err != NULL && strstr(err, frag1) && (!frag2 || strstr(err, frag2));
    if (!ok)
        printf("#   %s: got %s / err \"%s\", want \"%s\" \"%s\"\n", code, text ? text : "(null)",
               err ? err : "(null)", frag1, frag2 ? frag2 : "");
    free(text);
    free(err);
    return ok;
}

#define ROUND_TRIP(text)                      \
    do {                                      \
        char *rt_ = round_trip(L, text);      \
        CHECK_STR(rt_, text);                 \
        free(rt_);                            \
    } while (0)

#define FROM_LUA(code, want)                               \
    do {                                                   \
        char *e_ = NULL;                                   \
        char *t_ = lua_to_text(L, code, "value", &e_);     \
        if (!t_) printf("#   %s: %s\n", code, e_);         \
        CHECK_STR(t_, want);                               \
        free(t_);                                          \
        free(e_);                                          \
    } while (0)

TEST(push_object_and_array) {
    lua_State *L = test_json_state();
    json_t *j = json_loads("{\"name\":\"latte\",\"price\":380,\"tags\":[\"hot\",\"milk\"],"
                           "\"ok\":true,\"no\":false,\"ratio\":0.5}",
                           0, NULL);
    CHECK(j != NULL);
    pl_json_push(L, j);
    json_decref(j);
    CHECK(lua_istable(L, -1));
    CHECK(lua_true(L, "return v.name == 'latte' and v.price == 380 and math.type(v.price) == 'integer'"));
    CHECK(lua_true(L, "return #v.tags == 2 and v.tags[1] == 'hot' and v.tags[2] == 'milk'"));
    CHECK(lua_true(L, "return v.ok == true and v.no == false and v.ratio == 0.5"));
    CHECK(lua_true(L, "return getmetatable(v.tags) ~= nil and getmetatable(v) == nil"));
    CHECK(lua_gettop(L) == 1);
    lua_close(L);
}

TEST(round_trips) {
    lua_State *L = test_json_state();
    ROUND_TRIP("{\"a\":1,\"b\":[1,2,3],\"c\":{\"d\":\"x\"}}");
    ROUND_TRIP("[[],{},[[]]]");
    ROUND_TRIP("[]");
    ROUND_TRIP("{}");
    ROUND_TRIP("{\"cart\":{\"items\":[]}}");
    ROUND_TRIP("\"カフェラテ\"");
    ROUND_TRIP("[true,false,null]");
    ROUND_TRIP("9007199254740993");
    ROUND_TRIP("-42");
    ROUND_TRIP("1.5");
    ROUND_TRIP("\"a\\u0000b\"");
    CHECK(lua_gettop(L) == 0);
    lua_close(L);
}

TEST(integers_and_reals) {
    lua_State *L = test_json_state();
    json_t *j = json_loads("[3, 3.0, 3.25]", 0, NULL);
    pl_json_push(L, j);
    json_decref(j);
    CHECK(lua_true(L, "return math.type(v[1]) == 'integer' and math.type(v[2]) == 'float' and v[3] == 3.25"));
    lua_pop(L, 1);
    FROM_LUA("return 7", "7");
    FROM_LUA("return 7.0", "7.0");
    FROM_LUA("return 1/4", "0.25");
    FROM_LUA("return math.maxinteger", "9223372036854775807");
    FROM_LUA("return {n = 2^53}", "{\"n\":9007199254740992.0}");
    lua_close(L);
}

TEST(empty_arrays_stay_arrays) {
    lua_State *L = test_json_state();
    FROM_LUA("return {}", "{}");
    FROM_LUA("return json.array()", "[]");
    FROM_LUA("return json.array({})", "[]");
    FROM_LUA("return {items = json.array()}", "{\"items\":[]}");
    FROM_LUA("return {1, 2}", "[1,2]");
    /* the marker comes from decoding too */
    FROM_LUA("return json.decode('{\"a\":[]}')", "{\"a\":[]}");
    /* pl_json_mark_array from C */
    lua_newtable(L);
    pl_json_mark_array(L, -1);
    char *err = NULL;
    json_t *out = pl_json_from_lua(L, -1, "value", &err);
    lua_pop(L, 1);
    CHECK(json_is_array(out) && json_array_size(out) == 0);
    json_decref(out);
    free(err);
    lua_close(L);
}

TEST(null_sentinel) {
    lua_State *L = test_json_state();
    json_t *j = json_loads("{\"a\":null,\"b\":[1,null,3]}", 0, NULL);
    pl_json_push(L, j);
    json_decref(j);
    CHECK(lua_true(L, "return v.a == json.null and v.b[2] == json.null and #v.b == 3"));
    lua_getfield(L, -1, "a");
    CHECK(pl_json_is_null(L, -1));
    lua_pop(L, 1);
    pl_json_push_null(L);
    CHECK(pl_json_is_null(L, -1));
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    CHECK(!pl_json_is_null(L, -1));
    lua_pop(L, 1);
    lua_pushnil(L);
    CHECK(!pl_json_is_null(L, -1));
    lua_pop(L, 1);
    lua_pop(L, 1);
    FROM_LUA("return json.null", "null");
    FROM_LUA("return nil", "null");
    FROM_LUA("return {a = json.null, b = {1, json.null, 3}}", "{\"a\":null,\"b\":[1,null,3]}");
    ROUND_TRIP("{\"a\":null,\"b\":[1,null,3]}");
    lua_close(L);
}

TEST(refuses_functions_with_path) {
    lua_State *L = test_json_state();
    CHECK(refused(L, "return {a = {b = function() end}}", "session", "session.a.b", "function"));
    CHECK(refused(L, "return {list = {1, 2, print}}", "session", "session.list[3]", "function"));
    CHECK(refused(L, "return {order = {items = {{sku = 'x', f = coroutine.create(print)}}}}",
                  "slots", "slots.order.items[1].f", "thread"));
    CHECK(refused(L, "return {out = io.stdout}", "session", "session.out", "userdata"));
    CHECK(refused(L, "return print", "session", "session:", "function"));
    CHECK(lua_gettop(L) == 0);
    lua_close(L);
}

TEST(refuses_sparse_and_mixed) {
    lua_State *L = test_json_state();
    CHECK(refused(L, "return {a = {1, nil, 3}}", "session", "session.a", "holes"));
    CHECK(refused(L, "local t = {} t[2] = 'x' return {t = t}", "session", "session.t", "holes"));
    CHECK(refused(L, "return {[0] = 'zero'}", "session", "session", NULL));
    CHECK(refused(L, "return {a = {1, 2, x = 1}}", "session", "session.a", "list items and named keys"));
    CHECK(refused(L, "return {a = {x = 1, [5] = 2}}", "session", "session.a", "list items and named keys"));
    CHECK(lua_gettop(L) == 0);
    lua_close(L);
}

TEST(refuses_nan_and_infinity) {
    lua_State *L = test_json_state();
    CHECK(refused(L, "return {price = 0/0}", "session", "session.price", "NaN"));
    CHECK(refused(L, "return {n = {1, math.huge}}", "session", "session.n[2]", "infinity"));
    CHECK(refused(L, "return -math.huge", "total", "total", "infinity"));
    lua_close(L);
}

TEST(refuses_non_utf8) {
    lua_State *L = test_json_state();
    CHECK(refused(L, "return {name = 'caf\\xc3'}", "session", "session.name", "UTF-8"));
    CHECK(refused(L, "return {'ok', '\\xff'}", "replies", "replies[2]", "UTF-8"));
    /* a key too (jansson used to drop such a member without a word) */
    CHECK(refused(L, "return {a = {['caf\\xc3'] = 1}}", "session", "session.a.caf", "key is not valid UTF-8"));
    lua_close(L);
}

TEST(refuses_cycles_without_crashing) {
    lua_State *L = test_json_state();
    CHECK(refused(L, "local t = {} t.self = t return t", "session", "session.self", "nested"));
    CHECK(refused(L, "local t = json.array() t[1] = t return t", "session", "session[1]", "nested"));
    CHECK(refused(L, "local a, b = {}, {} a.b = b b.a = a return {root = a}", "session",
                  "session.root.b.a", "nested"));
    /* deep but finite nesting within the limit is fine */
    char want[80];
    memset(want, '[', 30);
    memcpy(want + 30, "{}", 2);
    memset(want + 32, ']', 30);
    want[62] = '\0';
    FROM_LUA("local t = {} for i = 1, 30 do t = {t} end return t", want);
    CHECK(lua_gettop(L) == 0);
    lua_close(L);
}

TEST(json_module_encode) {
    lua_State *L = test_json_state();
    CHECK(eval(L, "return json.encode({a = 1})"));
    CHECK_STR(lua_tostring(L, -1), "{\"a\":1}");
    lua_pop(L, 1);
    CHECK(eval(L, "return json.encode({1, 'two', true})"));
    CHECK_STR(lua_tostring(L, -1), "[1,\"two\",true]");
    lua_pop(L, 1);
    CHECK(eval(L, "return json.encode(json.array())"));
    CHECK_STR(lua_tostring(L, -1), "[]");
    lua_pop(L, 1);
    CHECK(eval(L, "return json.encode('x')"));
    CHECK_STR(lua_tostring(L, -1), "\"x\"");
    lua_pop(L, 1);
    CHECK(eval(L, "return json.encode({b = 1, a = {2}}, {pretty = true})"));
    CHECK_STR(lua_tostring(L, -1), "{\n  \"a\": [\n    2\n  ],\n  \"b\": 1\n}");
    lua_pop(L, 1);
    CHECK(eval(L, "local ok, e = pcall(json.encode, {a = {f = print}}) return not ok and e"));
    const char *e = lua_tostring(L, -1);
    CHECK(e && strstr(e, "json.encode: value.a.f") && strstr(e, "function"));
    lua_pop(L, 1);
    lua_close(L);
}

TEST(json_module_decode) {
    lua_State *L = test_json_state();
    CHECK(eval(L, "return json.decode('{\"a\":[1,2,{\"b\":null}],\"s\":\"ラテ\"}')"));
    CHECK(lua_true(L, "return v.a[3].b == json.null and #v.a == 2 + 1 and v.s == 'ラテ'"));
    lua_pop(L, 1);
    CHECK(eval(L, "return json.decode('42')"));
    CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 42);
    lua_pop(L, 1);
    /* encode(decode(x)) == x for arrays, including empty ones */
    CHECK(eval(L, "return json.encode(json.decode('{\"items\":[],\"n\":[[]]}'))"));
    const char *s = lua_tostring(L, -1);
    CHECK(s && (strcmp(s, "{\"items\":[],\"n\":[[]]}") == 0 || strcmp(s, "{\"n\":[[]],\"items\":[]}") == 0));
    lua_pop(L, 1);
    lua_close(L);
}

TEST(json_module_decode_errors) {
    lua_State *L = test_json_state();
    CHECK(eval(L, "local v, e = json.decode('{\"a\":}') return v == nil and e"));
    const char *e = lua_tostring(L, -1);
    CHECK(e && strncmp(e, "line 1: ", 8) == 0 && strlen(e) > 8);
    lua_pop(L, 1);
    CHECK(eval(L, "local v, e = json.decode('{\\n\"a\": 1,\\n\"b\": oops\\n}') return v == nil and e"));
    e = lua_tostring(L, -1);
    CHECK(e && strncmp(e, "line 3: ", 8) == 0);
    lua_pop(L, 1);
    CHECK(eval(L, "local v, e = json.decode('') return v == nil and type(e) == 'string' and e:match('^line %d+: ') ~= nil"));
    CHECK(lua_toboolean(L, -1));
    lua_pop(L, 1);
    CHECK(eval(L, "return select('#', json.decode('[1,'))"));
    CHECK(lua_tointeger(L, -1) == 2);
    lua_pop(L, 1);
    lua_close(L);
}

/* --- in a bot's state ------------------------------------------------------ */

#define BOT_MEMORY (64u << 20)
#define BOT_INSTRUCTIONS 100000000L

static pl_vm *new_bot_vm(long instructions) {
    return test_bot_vm("jsonbot", "/nonexistent", BOT_MEMORY, instructions, 0);
}

/* Runs code (one result) as a bot's handler run; PL_OK with the result
 * popped, or PL_ERR with *err set (new). */
static int bot_run(pl_vm *vm, const char *code, char **err) {
    lua_State *L = pl_vm_lua(vm);
    int rc = test_bot_run(vm, "@bot.lua", code, 100, err);
    if (rc == 0) lua_pop(L, 1);
    return rc;
}

/* Runs code that must fail with a message containing want. */
static int bot_fails(pl_vm *vm, const char *code, const char *want) {
    char *err = NULL;
    int rc = bot_run(vm, code, &err);
    int ok = rc != 0 && err && strstr(err, want);
    if (!ok) printf("#   %.60s...\n#   -> rc %d, \"%s\", want \"%s\"\n", code, rc, err ? err : "", want);
    free(err);
    return ok;
}

/* Runs code that must succeed and return true. */
static int bot_true(pl_vm *vm, const char *code) {
    lua_State *L = pl_vm_lua(vm);
    char *err = NULL;
    int ok = 0;
    if (luaL_loadbufferx(L, code, strlen(code), "@bot.lua", "t") == LUA_OK &&
        pl_vm_run(vm, 0, 1, 100, &err) == 0) {
        ok = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (!ok) printf("#   %.60s...\n#   -> %s\n", code, err ? err : "not true");
    free(err);
    return ok;
}

/* A run of code that decodes a list of n ones. */
static const char *decode_ones(char *code, size_t size, const char *n, const char *how) {
    snprintf(code, size,
             "local json = require 'json'\n"
             "local s = '[' .. ('1,'):rep(%s) .. '1]'\n"
             "%s",
             n, how);
    return code;
}

/* A run of code that encodes a list of n copies of a 100 KB string. */
static const char *encode_copies(char *code, size_t size, int n, const char *how) {
    snprintf(code, size,
             "local json = require 'json'\n"
             "local s, t = ('x'):rep(100000), {}\n"
             "for i = 1, %d do t[i] = s end\n"
             "%s",
             n, how);
    return code;
}

/* Every way a json call in a bot's run can fail, once. */
static void json_error_paths(pl_vm *vm) {
    char code[1024];
    /* decode too big: jansson's tree of 5e6 values does not fit (running
     * out of memory is an abort that pcall cannot catch) */
    CHECK(bot_fails(vm, decode_ones(code, sizeof code, "5e6", "return pcall(json.decode, s)"), "memory budget"));
    /* the tree fits, the Lua values made from it do not: the push fails */
    CHECK(bot_fails(vm, decode_ones(code, sizeof code, "1.25e6", "return pcall(json.decode, s)"), "memory budget"));
    CHECK(bot_fails(vm, decode_ones(code, sizeof code, "1.5e6", "return pcall(json.decode, s)"), "memory budget"));
    /* a string that does not fit: jansson's lexer, refused once, is
     * refused every byte after at no cost (it ignores the failures) */
    CHECK(bot_fails(vm,
                    "local json = require 'json'\n"
                    "local other = ('y'):rep(1e4):rep(2000)\n"
                    "local s = '\"' .. ('x'):rep(1e4):rep(2000) .. '\"'\n"
                    "return pcall(json.decode, s)",
                    "memory budget"));
    /* encode too big: 700 copies of 100 KB do not fit in jansson's tree,
     * 300 fit but their text does not */
    CHECK(bot_fails(vm, encode_copies(code, sizeof code, 700, "return pcall(json.encode, t)"), "memory budget"));
    CHECK(bot_fails(vm, encode_copies(code, sizeof code, 300, "return pcall(json.encode, t)"), "memory budget"));
    /* bad values, caught by the script: raise with the key path */
    CHECK(bot_true(vm, "local json = require 'json'\n"
                       "local ok, e = pcall(json.encode, {a = {1, 2, {f = print}}})\n"
                       "local ok2 = pcall(json.encode, {n = 0/0, s = 'caf\\xc3', [{}] = 1})\n"
                       "local ok3, e3 = pcall(json.encode, {['caf\\xc3'] = 1})\n"
                       "return not ok and e:find('value.a[3].f', 1, true) ~= nil and not ok2\n"
                       "  and not ok3 and e3:find('key is not valid UTF-8', 1, true) ~= nil"));
    /* nested too deep, both ways; malformed text */
    CHECK(bot_true(vm, "local json = require 'json'\n"
                       "local t = {} for i = 1, 100 do t = {t} end\n"
                       "local ok, e = pcall(json.encode, {deep = t})\n"
                       "local v, e2 = json.decode(('['):rep(5000) .. (']'):rep(5000))\n"
                       "local v3, e3 = json.decode('{\"a\": [1, 2,')\n"
                       "return not ok and e:find('nested', 1, true) ~= nil and v == nil\n"
                       "  and e2:find('^line') ~= nil and v3 == nil and e3:find('^line') ~= nil"));
}

/* The instruction budget ends loops of json calls wherever the charge runs
 * out: while pushing a decoded list, before decoding a long text, while
 * converting a list, before pushing a long text. n (a global) says how many
 * calls got through. The texts of the last two loops are garbage that
 * fills the memory budget: jansson's memory is only refused once Lua has
 * collected it, so these end on the instruction budget, not on memory. */
static void json_budget_paths(pl_vm *vm) {
    static const char *const loops[] = {
        "local s = '[' .. ('1,'):rep(1e5) .. '1]'\n"
        "for i = 1, 1e5 do json.decode(s) n = n + 1 end",
        "local s = '\"' .. ('x'):rep(1e4):rep(1000) .. '\"'\n"
        "for i = 1, 1e5 do json.decode(s) n = n + 1 end",
        "local t = json.decode('[' .. ('1,'):rep(1e5) .. '1]')\n"
        "for i = 1, 1e5 do json.encode(t) n = n + 1 end",
        "local s = ('x'):rep(1e4):rep(1000)\n"
        "for i = 1, 1e5 do json.encode(s) n = n + 1 end",
    };
    for (size_t i = 0; i < sizeof loops / sizeof *loops; i++) {
        char code[512];
        snprintf(code, sizeof code, "local json = require 'json'\nn = 0\n%s\nreturn n", loops[i]);
        CHECK(bot_fails(vm, code, "instruction budget"));
        CHECK(bot_true(vm, "return n < 20"));
    }
}

TEST(bot_error_paths_leak_nothing) {
    pl_vm *vm = new_bot_vm(BOT_INSTRUCTIONS);
    pl_vm *small = new_bot_vm(1000000L);
    if (!vm || !small) return;
    json_error_paths(vm); /* the first round makes what stays (interned strings, tables) */
    json_budget_paths(small);
    lua_gc(pl_vm_lua(vm), LUA_GCCOLLECT);
    lua_gc(pl_vm_lua(small), LUA_GCCOLLECT);
    size_t heap = heap_in_use();
    size_t used = pl_vm_memory_used(vm);
    for (int i = 0; i < 2; i++) {
        json_error_paths(vm);
        json_budget_paths(small);
    }
    lua_gc(pl_vm_lua(vm), LUA_GCCOLLECT);
    lua_gc(pl_vm_lua(small), LUA_GCCOLLECT);
    size_t grown = heap_in_use() > heap ? heap_in_use() - heap : 0;
    printf("#   the heap grew by %zu bytes over 2 rounds\n", grown);
    CHECK(grown < (1u << 20));
    /* and every byte reserved for jansson was released */
    CHECK(pl_vm_memory_used(vm) <= used + 4096);
    pl_vm_release(vm);
    pl_vm_release(small);
}

/* jansson's memory counts in the bot's budget: a list of 2e6 numbers is
 * 32 MB as a Lua table, which fits in 64 MB, but several times that as
 * jansson's tree, which does not. */
TEST(bot_decode_counts_jansson_memory) {
    pl_vm *vm = new_bot_vm(BOT_INSTRUCTIONS);
    if (!vm) return;
    char code[256];
    CHECK(bot_true(vm, "local t = {} for i = 1, 2e6 do t[i] = 1 end return #t == 2e6"));
    CHECK(bot_fails(vm, decode_ones(code, sizeof code, "2e6", "return #json.decode(s)"), "memory budget"));
    CHECK(bot_true(vm, decode_ones(code, sizeof code, "1e5", "return #json.decode(s) == 1e5 + 1")));
    pl_vm_release(vm);
}

/* What jansson allocates in a scope is reserved in the vm, and released
 * when freed in a scope; outside one nothing counts. */
TEST(scope_reserves_and_releases) {
    pl_vm *vm = new_bot_vm(BOT_INSTRUCTIONS);
    if (!vm) return;
    size_t base = pl_vm_memory_used(vm);
    pl_json_scope scope;
    pl_json_scope_open(&scope, vm);
    json_t *tree = json_loads("{\"items\": [1, 2, 3, \"four\", {\"five\": 5.0}]}", 0, NULL);
    CHECK(pl_json_scope_close(&scope) == 0);
    CHECK(tree != NULL);
    size_t counted = pl_vm_memory_used(vm) - base;
    CHECK(counted >= 8 * sizeof(json_t));
    json_t *other = json_loads("[1, 2, 3]", 0, NULL); /* no scope: not counted */
    CHECK(pl_vm_memory_used(vm) == base + counted);
    json_decref(other);
    pl_json_scope_open(&scope, vm);
    json_decref(tree);
    pl_json_scope_close(&scope);
    CHECK(pl_vm_memory_used(vm) == base);
    pl_vm_release(vm);
}

int main(void) {
    RUN(push_object_and_array);
    RUN(round_trips);
    RUN(integers_and_reals);
    RUN(empty_arrays_stay_arrays);
    RUN(null_sentinel);
    RUN(refuses_functions_with_path);
    RUN(refuses_sparse_and_mixed);
    RUN(refuses_nan_and_infinity);
    RUN(refuses_non_utf8);
    RUN(refuses_cycles_without_crashing);
    RUN(json_module_encode);
    RUN(json_module_decode);
    RUN(json_module_decode_errors);
    RUN(bot_error_paths_leak_nothing);
    RUN(bot_decode_counts_jansson_memory);
    RUN(scope_reserves_and_releases);
    return check_done();
}
