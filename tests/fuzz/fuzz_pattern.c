/* fuzz_pattern: the Lua pattern matcher of pattern.c, through the string
 * functions a bot's scripts call (pattern_lua.c), compared with Lua's own.
 *
 * The input is a pattern, a subject and a gsub replacement, separated by
 * NUL bytes (missing parts are empty). find, match, gmatch and gsub run in
 * a bot's state under an instruction budget; when they finish within it,
 * the same calls run in a plain Lua state with the stock string library,
 * and every result and error message must be the same. (A call over the
 * budget is not run on stock Lua: that is where stock Lua would run for
 * minutes.) */
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sandbox/vm.h"

/* Runs the four functions on (s, p, r) and returns one string that says
 * everything they gave back or raised. */
static const char probe[] =
    "local s, p, r = ...\n"
    "local out = {}\n"
    "local function add(...)\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    out[#out + 1] = type(v) == 'string' and string.format('%q', v) or tostring(v)\n"
    "  end\n"
    "  out[#out + 1] = '|'\n"
    "end\n"
    "add(pcall(string.find, s, p))\n"
    "add(pcall(string.find, s, p, 2))\n"
    "add(pcall(string.match, s, p))\n"
    "add(pcall(string.match, s, p, -3))\n"
    "add(pcall(function()\n"
    "  local got = {}\n"
    "  for a, b in string.gmatch(s, p) do\n"
    "    got[#got + 1] = tostring(a) .. ',' .. tostring(b)\n"
    "    if #got > 50 then break end\n"
    "  end\n"
    "  return table.concat(got, ';')\n"
    "end))\n"
    "add(pcall(string.gsub, s, p, r))\n"
    "add(pcall(string.gsub, s, p, r, 2))\n"
    "add(pcall(string.gsub, s, p, { a = 'A', [''] = 'E' }))\n"
    "return table.concat(out, ' ')\n";

static pl_vm *vm;
static lua_State *stock;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    pl_vm_config config = {.bot_name = "fuzz", .bot_dir = "/nonexistent", .memory_limit = 64u << 20,
                           .instruction_limit = 2000000, .time_limit_ms = 0};
    char *err = NULL;
    vm = pl_vm_new(&config, &err);
    fuzz_expect(vm != NULL, "a bot state can be made");
    stock = luaL_newstate();
    luaL_openlibs(stock);
    return 0;
}

/* Splits data at the next NUL from *at: a part (borrowed) and its length. */
static const char *part(const uint8_t *data, size_t size, size_t *at, size_t *len) {
    const char *start = (const char *)data + *at;
    size_t n = 0;
    while (*at + n < size && data[*at + n] != 0) n++;
    *len = n;
    *at += n + (*at + n < size);
    return start;
}

/* Pushes the probe and its three arguments onto L. */
static void push_call(lua_State *L, const char *p, size_t lp, const char *s, size_t ls, const char *r, size_t lr) {
    fuzz_expect(luaL_loadbufferx(L, probe, sizeof probe - 1, "=probe", "t") == LUA_OK, "the probe compiles");
    lua_pushlstring(L, s, ls);
    lua_pushlstring(L, p, lp);
    lua_pushlstring(L, r, lr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t at = 0, lp, ls, lr;
    const char *p = part(data, size, &at, &lp);
    const char *s = part(data, size, &at, &ls);
    const char *r = part(data, size, &at, &lr);
    lua_State *L = pl_vm_lua(vm);
    push_call(L, p, lp, s, ls, r, lr);
    char *err = NULL;
    if (pl_vm_run(vm, 3, 1, 100, &err) != PL_OK) {
        /* only a budget may stop the run: every pattern error is caught */
        fuzz_expect(err && strstr(err, "budget"), "a run fails only over its budget");
        free(err);
        lua_gc(L, LUA_GCCOLLECT);
        return 0;
    }
    size_t ours_len;
    const char *ours = lua_tolstring(L, -1, &ours_len);
    push_call(stock, p, lp, s, ls, r, lr);
    fuzz_expect(lua_pcall(stock, 3, 1, 0) == LUA_OK, "the probe runs on stock Lua");
    size_t theirs_len;
    const char *theirs = lua_tolstring(stock, -1, &theirs_len);
    fuzz_expect(ours_len == theirs_len && memcmp(ours, theirs, ours_len) == 0,
                "every result and error is the stock string library's");
    lua_pop(L, 1);
    lua_pop(stock, 1);
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(stock, LUA_GCCOLLECT);
    return 0;
}
