/* vm: the sandboxed Lua state of one bot; see vm.h.
 * Owns the making of a state: the allow-listed globals (with guard.c's
 * guarded functions and pattern_lua.c's patterns), the text-only load and
 * the bot-folder require. The budgets its runs go by are run.c's; the
 * runtime's modules come from the state's creator (pl_vm_config). */
#define _GNU_SOURCE
#include "vm.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "guard.h"
#include "pattern_lua.h"
#include "state.h"

/* --- the allow list ---------------------------------------------------- */

static void remove_global(lua_State *L, const char *name) {
    lua_pushnil(L);
    lua_setglobal(L, name);
}

/* os.time() with no argument reads parley's clock (which tests can move);
 * with a table it is Lua's own. */
static int clock_time(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_pushinteger(L, (lua_Integer)(pl_now_ms() / 1000));
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static void restrict_os(lua_State *L) {
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 3);
    static const char *const keep[] = {"clock", "date"};
    for (int i = 0; i < 2; i++) {
        lua_getfield(L, -2, keep[i]);
        lua_setfield(L, -2, keep[i]);
    }
    lua_getfield(L, -2, "time");
    lua_pushcclosure(L, clock_time, 1);
    lua_setfield(L, -2, "time");
    /* require "os" must find the restricted table, not the full library */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, LUA_OSLIBNAME);
    lua_pop(L, 1);
    lua_setglobal(L, "os");
    lua_pop(L, 1);
}

/* Relative path of a module name inside the bot folder ("lib.util" ->
 * "lib/util.lua"), or NULL when the name could escape the folder. */
static char *module_path(const char *name) {
    if (!*name || name[0] == '.') return NULL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') return NULL;
    if (strstr(name, "..")) return NULL;
    char *path = pl_strdupf("%s.lua", name);
    for (char *p = path; p < path + strlen(name); p++)
        if (*p == '.') *p = '/';
    return path;
}

/* package.searchers entry: modules inside the bot's folder. */
static int bot_folder_searcher(lua_State *L) {
    pl_vm *vm = pl_vm_from_lua(L);
    const char *name = luaL_checkstring(L, 1);
    char *rel = module_path(name);
    if (!rel) {
        lua_pushfstring(L, "\n\tmodule name '%s' is not allowed (letters, digits, _ - and dots)",
                        name);
        return 1;
    }
    char *err = NULL;
    if (pl_vm_load_file(vm, L, rel, &err) != PL_OK) {
        int missing = strstr(err, "No such file") != NULL;
        lua_pushfstring(L, missing ? "\n\tno file '%s' in the bot folder" : "%s", missing ? rel : err);
        free(rel);
        free(err);
        if (!missing) return lua_error(L);
        return 1;
    }
    lua_pushstring(L, rel);
    free(rel);
    return 2;
}

static void restrict_package(lua_State *L) {
    luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 1);
    lua_getfield(L, -1, "searchers");
    lua_rawgeti(L, -1, 1); /* keep the preload searcher only */
    lua_createtable(L, 2, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushcfunction(L, bot_folder_searcher);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -3, "searchers");
    lua_pop(L, 1);
    static const char *const drop[] = {"loadlib", "searchpath", "cpath", "path"};
    for (int i = 0; i < 4; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, drop[i]);
    }
    lua_pop(L, 1);
}

static void open_allowed(lua_State *L) {
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},       {LUA_COLIBNAME, luaopen_coroutine},
                                    {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8},
                                    {NULL, NULL}};
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    restrict_package(L);
    restrict_os(L);
    remove_global(L, "dofile");
    remove_global(L, "loadfile");
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    pl_guard_install(L);
    pl_pattern_install(L);
}

static int panic(lua_State *L) {
    pl_error("lua: unprotected error: %s", lua_tostring(L, -1));
    abort();
}

/* Runs in protected mode: a failure while setting up becomes an error.
 * The creator's modules come last: they may use what the allow list left. */
static int setup_state(lua_State *L) {
    const pl_vm_config *config = lua_touserdata(L, 1);
    open_allowed(L);
    if (config->open_modules) {
        lua_pushcfunction(L, config->open_modules);
        lua_call(L, 0, 0);
    }
    return 0;
}

pl_vm *pl_vm_new(const pl_vm_config *config, char **err) {
    pl_vm *vm = calloc(1, sizeof *vm);
    if (!vm) abort();
    vm->refs = 1;
    vm->mem_limit = config->memory_limit;
    vm->instruction_limit = config->instruction_limit;
    vm->time_limit_ms = config->time_limit_ms;
    vm->usage = config->usage;
    vm->bot_name = pl_strdup(config->bot_name);
    vm->bot_dir = pl_strdup(config->bot_dir);
    vm->L = lua_newstate(pl_vm_alloc, vm);
    if (!vm->L) abort();
    *(pl_vm **)lua_getextraspace(vm->L) = vm;
    lua_atpanic(vm->L, panic);
    /* Generational collection: most of what a turn makes (the conversation,
     * its replies, the rendered texts) is garbage by the turn's end, and a
     * minor collection frees it without walking the bot's long-lived
     * tables (its flows, tone, catalog) each cycle. Measured on the default
     * bot: 2.5% fewer instructions a message, 5-10% more messages/s. */
    lua_gc(vm->L, LUA_GCGEN, 0, 0);
    /* threads copy their hook from the main thread when created */
    vm->watched = vm->instruction_limit >= PL_WATCH_FROM_LIMIT;
    if (!vm->watched) pl_vm_count_from_start(vm);
    lua_pushcfunction(vm->L, setup_state);
    lua_pushlightuserdata(vm->L, (void *)config);
    if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
        pl_fail(err, "cannot set up the Lua state: %s", lua_tostring(vm->L, -1));
        pl_vm_release(vm);
        return NULL;
    }
    return vm;
}

void pl_vm_retain(pl_vm *vm) { vm->refs++; }

void pl_vm_release(pl_vm *vm) {
    if (!vm || --vm->refs > 0) return;
    lua_close(vm->L);
    pl_vm_free_blocks(vm);
    free(vm->bot_name);
    free(vm->bot_dir);
    free(vm);
}

lua_State *pl_vm_lua(pl_vm *vm) { return vm->L; }
const char *pl_vm_bot_name(const pl_vm *vm) { return vm->bot_name; }
const char *pl_vm_bot_dir(const pl_vm *vm) { return vm->bot_dir; }
long pl_vm_instruction_limit(const pl_vm *vm) { return vm->instruction_limit; }
long pl_vm_time_limit_ms(const pl_vm *vm) { return vm->time_limit_ms; }
size_t pl_vm_memory_used(const pl_vm *vm) { return vm->mem_used; }
size_t pl_vm_memory_limit(const pl_vm *vm) { return vm->mem_limit; }
void pl_vm_set_userdata(pl_vm *vm, void *ud) { vm->userdata = ud; }
void *pl_vm_userdata(const pl_vm *vm) { return vm->userdata; }

int pl_vm_load_file(pl_vm *vm, lua_State *L, const char *relpath, char **err) {
    char *path = pl_strdupf("%s/%s", vm->bot_dir, relpath);
    char *text = NULL;
    size_t len = 0;
    int rc = pl_read_file(path, &text, &len, err);
    free(path);
    if (rc != PL_OK) return rc;
    /* a bot's own file, but compiling it takes the loop: bounded and charged */
    if (len > PL_MAX_SCRIPT_FILE) {
        free(text);
        return pl_fail(err, "%s:1: the file is %zu KB; a script file may have at most %d KB", relpath, len >> 10,
                       PL_MAX_SCRIPT_FILE >> 10);
    }
    if (!pl_vm_charge(L, (long)(len >> 2))) {
        free(text);
        return pl_fail(err, "%s: over the run's budget while compiling", relpath);
    }
    char *chunkname = pl_strdupf("@%s", relpath);
    int outer_enforce = vm->mem_enforce;
    vm->mem_enforce = 1;
    int status = luaL_loadbufferx(L, text, len, chunkname, "t");
    vm->mem_enforce = outer_enforce;
    free(chunkname);
    free(text);
    if (status != LUA_OK) {
        pl_fail(err, "%s", status == LUA_ERRMEM ? "memory budget exceeded while compiling"
                                                 : lua_tostring(L, -1));
        lua_pop(L, 1);
        return PL_ERR;
    }
    return PL_OK;
}

int pl_vm_run(pl_vm *vm, int nargs, int nres, long percent, char **err) {
    lua_State *L = vm->L;
    lua_State *co = lua_newthread(L);
    lua_insert(L, -(nargs + 2));           /* thread below function and args */
    lua_xmove(L, co, nargs + 1);
    pl_budget budget = {.limit = vm->instruction_limit * percent / 100};
    if (vm->time_limit_ms > 0) budget.time_limit_ms = vm->time_limit_ms * percent / 100 + 1;
    int got = 0;
    int status = pl_vm_resume(vm, co, nargs, &got, &budget);
    int rc = PL_OK;
    if (status == LUA_OK) {
        lua_settop(co, got);
        for (int i = got; i < nres; i++) lua_pushnil(co);
        lua_settop(co, nres);
        lua_xmove(co, L, nres);
    } else if (status == LUA_YIELD) {
        rc = pl_fail(err, "a script may not wait for I/O while it is being loaded");
    } else {
        char *msg = pl_vm_describe_error(vm, co, status, NULL);
        pl_fail(err, "%s", msg);
        free(msg);
        rc = PL_ERR;
    }
    /* remove the thread (now garbage), which sits below any results */
    lua_remove(L, rc == PL_OK ? -(nres + 1) : -1);
    if (status != LUA_OK) lua_gc(L, LUA_GCCOLLECT);
    return rc;
}
