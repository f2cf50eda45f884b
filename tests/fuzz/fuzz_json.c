/* fuzz_json: the `json` module of a bot's scripts (json_lua.c), on any
 * text, in a bot's state with a small memory budget.
 *
 * The input is the text given to json.decode. Whatever it is, the run ends
 * (a result, nil and a reason, or a budget), nothing leaks (the replay
 * driver checks with LeakSanitizer, and the bot's memory count must come
 * back to where it was), and what decodes encodes back to a text that
 * decodes to the same value again (a round trip is stable, compact or
 * pretty). */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"
#include "fuzz.h"
#include "sandbox/vm.h"

/* The canonical text is the pretty one: its keys are sorted, while the
 * compact text keeps the order the Lua table happens to give. */
static const char probe[] =
    "local json = require 'json'\n"
    "local text = ...\n"
    "local value, why = json.decode(text)\n"
    "if value == nil then\n"
    "  assert(type(why) == 'string' and why:find('^line %d+: '), 'a refusal says why: ' .. tostring(why))\n"
    "  return 'refused'\n"
    "end\n"
    "local ok, canonical = pcall(json.encode, value, { pretty = true })\n"
    "if not ok then return 'not encodable' end\n" /* a string key that is not UTF-8, say */
    "local function decode(t) local v, e = json.decode(t) assert(e == nil, e) return v end\n"
    "local again = json.encode(decode(canonical), { pretty = true })\n"
    "assert(again == canonical, 'a round trip is stable')\n"
    "local compact = json.encode(value)\n"
    "assert(json.encode(decode(compact), { pretty = true }) == canonical, 'compact says the same')\n"
    "return 'decoded'\n";

static pl_vm *vm;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    pl_vm_config config = {.bot_name = "fuzz", .bot_dir = "/nonexistent", .memory_limit = 8u << 20,
                           .instruction_limit = 5000000, .time_limit_ms = 0,
                           .open_modules = pl_modules_open};
    char *err = NULL;
    vm = pl_vm_new(&config, &err);
    fuzz_expect(vm != NULL, "a bot state can be made");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_State *L = pl_vm_lua(vm);
    lua_gc(L, LUA_GCCOLLECT);
    size_t before = pl_vm_memory_used(vm);
    fuzz_expect(luaL_loadbufferx(L, probe, sizeof probe - 1, "=probe", "t") == LUA_OK, "the probe compiles");
    lua_pushlstring(L, (const char *)data, size);
    char *err = NULL;
    if (pl_vm_run(vm, 1, 1, 100, &err) == PL_OK) {
        lua_pop(L, 1);
    } else {
        /* a broken promise of the module shows as a failed assert */
        if (!(err && strstr(err, "budget"))) fprintf(stderr, "fuzz_json: %s\n", err ? err : "?");
        fuzz_expect(err && strstr(err, "budget"), "a run fails only over a budget");
        free(err);
    }
    lua_gc(L, LUA_GCCOLLECT);
    fuzz_expect(pl_vm_memory_used(vm) <= before + 4096, "the bot's memory count comes back");
    return 0;
}
