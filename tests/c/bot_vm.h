/* bot_vm.h: a bot's sandboxed Lua state for the C tests (with the runtime's
 * modules, as a bot's own), and a chunk run in it as a handler run under its
 * budgets (vm.h). Header-only, like check.h. */
#ifndef PL_TEST_BOT_VM_H
#define PL_TEST_BOT_VM_H

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"
#include "sandbox/json_lua.h"
#include "sandbox/vm.h"

/* A new state (NULL, with the reason printed as a TAP comment, on failure). */
static inline pl_vm *test_bot_vm(const char *name, const char *dir, size_t memory, long instructions,
                                 long time_ms) {
    pl_vm_config config = {
        .bot_name = name,
        .bot_dir = dir,
        .memory_limit = memory,
        .instruction_limit = instructions,
        .time_limit_ms = time_ms,
        .open_modules = pl_modules_open,
    };
    char *err = NULL;
    pl_vm *vm = pl_vm_new(&config, &err);
    if (!vm) printf("#   pl_vm_new: %s\n", err);
    free(err);
    return vm;
}

/* A plain Lua state (all standard libraries, no sandbox) with the `json`
 * module as the global json: for testing the module itself. */
static inline lua_State *test_json_state(void) {
    lua_State *L = luaL_newstate();
    *(void **)lua_getextraspace(L) = NULL;
    luaL_openlibs(L);
    luaL_requiref(L, "json", pl_json_open, 1);
    lua_pop(L, 1);
    return L;
}

/* Compiles code as chunkname ("@chunk.lua") and runs it under `percent` of
 * the state's budgets: PL_OK with one result on the stack, or PL_ERR with
 * *err set (new). */
static inline int test_bot_run(pl_vm *vm, const char *chunkname, const char *code, long percent, char **err) {
    lua_State *L = pl_vm_lua(vm);
    if (luaL_loadbufferx(L, code, strlen(code), chunkname, "t") != LUA_OK) {
        *err = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return pl_vm_run(vm, 0, 1, percent, err);
}

#endif
