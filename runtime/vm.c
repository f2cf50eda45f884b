/* vm: the sandboxed Lua state of one bot; see vm.h.
 * Owns the allocator accounting, the budget hook, the allow-listed globals,
 * the text-only load and the bot-folder require. Runtime modules are
 * registered by modules.c. */
#define _GNU_SOURCE
#include "vm.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"
#include "modules.h"

/* The hook runs every HOOK_STEP instructions; the budget is counted in
 * these steps, so a limit is exact to within one step. */
#define HOOK_STEP 1000

struct pl_vm {
    lua_State *L;
    int refs;
    size_t mem_used;
    size_t mem_limit;
    int mem_enforce;     /* set only while merchant code runs */
    pl_budget *current;  /* the run now executing, if any */
    char *bot_name;
    char *bot_dir;
    long instruction_limit;
    void *userdata;
};

/* Every thread's extra space holds the vm (threads copy it from the main
 * thread when created), so hooks and C functions find their vm in O(1). */
pl_vm *pl_vm_from_lua(lua_State *L) { return *(pl_vm **)lua_getextraspace(L); }

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    pl_vm *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->mem_used -= old;
        return NULL;
    }
    if (vm->mem_enforce && nsize > old && vm->mem_used + (nsize - old) > vm->mem_limit)
        return NULL; /* Lua collects garbage and retries before raising */
    void *p = realloc(ptr, nsize);
    if (p) vm->mem_used = vm->mem_used - old + nsize;
    return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm->current;
    if (!b) return;
    if (ar->event == LUA_HOOKCOUNT) b->used += HOOK_STEP;
    if (b->used <= b->limit && !b->exceeded) return;
    b->exceeded = 1;
    /* From now on fail at every line, so a pcall cannot swallow the abort;
     * on the run's own thread too, in case L is a coroutine of the script. */
    lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    if (b->root && b->root != L) lua_sethook(b->root, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    /* Not luaL_error: inside a hook its level 1 is the caller of the
     * function that was running, not that function. */
    lua_Debug here;
    if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
        lua_pushfstring(L, "%s:%d: instruction budget of %d exceeded (a loop that never ends?)",
                        here.short_src, here.currentline, (int)b->limit);
    else
        lua_pushfstring(L, "instruction budget of %d exceeded (a loop that never ends?)",
                        (int)b->limit);
    lua_error(L);
}

/* --- the allow list ---------------------------------------------------- */

/* load(chunk [, name [, mode [, env]]]) with mode forced to text. */
static int safe_load(lua_State *L) {
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (nargs >= 2) lua_pushvalue(L, 2); else lua_pushnil(L);
    lua_pushliteral(L, "t");
    if (nargs >= 4) lua_pushvalue(L, 4);
    lua_call(L, nargs >= 4 ? 4 : 3, 2);
    return 2;
}

/* collectgarbage limited to options that cannot defeat the memory budget. */
static int safe_collectgarbage(lua_State *L) {
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") == 0) {
        lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                              (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
        return 1;
    }
    if (strcmp(opt, "collect") == 0 || strcmp(opt, "step") == 0) {
        lua_gc(L, strcmp(opt, "collect") == 0 ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
        lua_pushinteger(L, 0);
        return 1;
    }
    return luaL_error(L, "collectgarbage('%s') is not available to bot scripts", opt);
}

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
    lua_getglobal(L, "load");
    lua_pushcclosure(L, safe_load, 1);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, safe_collectgarbage);
    lua_setglobal(L, "collectgarbage");
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
}

static int panic(lua_State *L) {
    pl_error("lua: unprotected error: %s", lua_tostring(L, -1));
    abort();
}

/* Runs in protected mode: a failure while setting up becomes an error. */
static int setup_state(lua_State *L) {
    open_allowed(L);
    pl_modules_register(L);
    pl_modules_print_to_log(L);
    return 0;
}

pl_vm *pl_vm_new(const pl_vm_config *config, char **err) {
    pl_vm *vm = calloc(1, sizeof *vm);
    if (!vm) abort();
    vm->refs = 1;
    vm->mem_limit = config->memory_limit;
    vm->instruction_limit = config->instruction_limit;
    vm->bot_name = pl_strdup(config->bot_name);
    vm->bot_dir = pl_strdup(config->bot_dir);
    vm->L = lua_newstate(budget_alloc, vm);
    if (!vm->L) abort();
    *(pl_vm **)lua_getextraspace(vm->L) = vm;
    lua_atpanic(vm->L, panic);
    lua_sethook(vm->L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
    lua_pushcfunction(vm->L, setup_state);
    if (lua_pcall(vm->L, 0, 0, 0) != LUA_OK) {
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
    free(vm->bot_name);
    free(vm->bot_dir);
    free(vm);
}

lua_State *pl_vm_lua(pl_vm *vm) { return vm->L; }
pl_budget *pl_vm_current_budget(const pl_vm *vm) { return vm->current; }
const char *pl_vm_bot_name(const pl_vm *vm) { return vm->bot_name; }
const char *pl_vm_bot_dir(const pl_vm *vm) { return vm->bot_dir; }
long pl_vm_instruction_limit(const pl_vm *vm) { return vm->instruction_limit; }
size_t pl_vm_memory_used(const pl_vm *vm) { return vm->mem_used; }
void pl_vm_set_userdata(pl_vm *vm, void *ud) { vm->userdata = ud; }
void *pl_vm_userdata(const pl_vm *vm) { return vm->userdata; }

int pl_vm_load_file(pl_vm *vm, lua_State *L, const char *relpath, char **err) {
    char *path = pl_strdupf("%s/%s", vm->bot_dir, relpath);
    char *text = NULL;
    size_t len = 0;
    int rc = pl_read_file(path, &text, &len, err);
    free(path);
    if (rc != PL_OK) return rc;
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

int pl_vm_resume(pl_vm *vm, lua_State *co, int nargs, int *nres, pl_budget *budget) {
    pl_budget *outer = vm->current;
    int outer_enforce = vm->mem_enforce;
    vm->current = budget;
    vm->mem_enforce = 1;
    budget->root = co;
    int status = lua_resume(co, vm->L, nargs, nres);
    vm->current = outer;
    vm->mem_enforce = outer_enforce;
    if (budget->exceeded && status != LUA_ERRRUN && status != LUA_ERRMEM) {
        lua_settop(co, 0);
        lua_pushfstring(co, "instruction budget of %d exceeded (a loop that never ends?)",
                        (int)budget->limit);
        return LUA_ERRRUN;
    }
    return status;
}

/* Source of the runtime's own modules, which an error does not blame. */
static int is_runtime_source(const char *source) {
    return strncmp(source, "@parley/", 8) == 0 || source[0] == '=';
}

static int has_position(const char *msg) {
    const char *colon = strstr(msg, ".lua:");
    if (!colon) return 0;
    const char *p = colon + 5;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    return *p == ':';
}

char *pl_vm_describe_error(pl_vm *vm, lua_State *co, int status, char **traceback) {
    const char *msg = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
    char *reason;
    if (status == LUA_ERRMEM)
        reason = pl_strdupf("memory budget of %zu MB exceeded", vm->mem_limit >> 20);
    else
        reason = pl_strdup(msg ? msg : "(error object is not a string)");
    char where[300] = "";
    lua_Debug ar;
    for (int level = 0; lua_getstack(co, level, &ar); level++) {
        if (!lua_getinfo(co, "Sl", &ar) || ar.currentline <= 0) continue;
        if (is_runtime_source(ar.source)) continue;
        snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
        break;
    }
    char *described =
        (has_position(reason) || !where[0]) ? pl_strdup(reason) : pl_strdupf("%s: %s", where, reason);
    if (traceback) {
        luaL_traceback(vm->L, co, NULL, 0);
        *traceback = pl_strdup(lua_tostring(vm->L, -1));
        lua_pop(vm->L, 1);
    }
    free(reason);
    return described;
}

int pl_vm_run(pl_vm *vm, int nargs, int nres, long instruction_limit, char **err) {
    lua_State *L = vm->L;
    lua_State *co = lua_newthread(L);
    lua_insert(L, -(nargs + 2));           /* thread below function and args */
    lua_xmove(L, co, nargs + 1);
    pl_budget budget = {.limit = instruction_limit};
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
