/* guard: guarded base-library functions of the sandbox; see guard.h.
 * Each checks, when control would go back to the script after a protected
 * call or a coroutine, whether the run is over a budget, and leaves it then
 * (pl_vm_abort). Charges are in instruction-equivalents (run.h). */
#include "guard.h"

#include <lauxlib.h>
#include <string.h>

#include "run.h"

/* Units charged for a loop in C over n items, before it runs. Saturates
 * instead of overflowing, so a count of 1e18 is simply over any budget. */
static long items(lua_Integer n) {
    if (n <= 0) return 0;
    return n > (lua_Integer)(1L << 40) ? (1L << 40) : (long)n;
}

/* --- pcall and xpcall: an abort is never caught ------------------------------ */

/* Continuation of both: leaves the run if it went over a budget (a memory
 * error that Lua could not recover from included), else returns like Lua's. */
static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
    if (status == LUA_ERRMEM) return pl_vm_abort_over(L, PL_OVER_MEMORY);
    if (pl_vm_over(L)) return pl_vm_abort(L);
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int guard_pcall(lua_State *L) {
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
    return finish_pcall(L, status, 0);
}

/* The message handler the script gave xpcall runs only while the run is
 * within its budgets: after an abort (raised from the hook, where hooks
 * are off) the error passes through untouched. */
static int guarded_handler(lua_State *L) {
    if (pl_vm_over(L)) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int guard_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2); /* true and the function below the arguments */
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
    return finish_pcall(L, status, 2);
}

/* --- coroutines: the vm knows which thread runs, and an abort goes up ------- */

/* Resumes co with the nargs values on L's top. Returns how many results it
 * moved onto L, or -1 with the error on L's top. Leaves the run when it
 * went over a budget inside co. */
static int resume(lua_State *L, lua_State *co, int nargs) {
    if (!lua_checkstack(co, nargs)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, nargs);
    pl_vm *vm = pl_vm_from_lua(L);
    lua_State *outer = pl_vm_running(vm);
    pl_vm_set_running(vm, co);
    int nres = 0;
    int status = lua_resume(co, L, nargs, &nres);
    pl_vm_set_running(vm, outer);
    if (status == LUA_ERRMEM) return pl_vm_abort_over(L, PL_OVER_MEMORY);
    if (pl_vm_over(L)) return pl_vm_abort(L);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

static lua_State *check_coroutine(lua_State *L, int idx) {
    lua_State *co = lua_tothread(L, idx);
    luaL_argexpected(L, co, idx, "coroutine");
    if (pl_vm_is_turn_thread(L, co))
        luaL_argerror(L, idx, "a turn's own coroutine (from coroutine.running()) cannot be resumed or closed");
    return co;
}

static int guard_resume(lua_State *L) {
    lua_State *co = check_coroutine(L, 1);
    int n = resume(L, co, lua_gettop(L) - 1);
    if (n < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(n + 1));
    return n + 1;
}

/* The function coroutine.wrap returns: resumes, and raises the
 * coroutine's error with the caller's position, as Lua's does. */
static int wrapped_call(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int n = resume(L, co, lua_gettop(L));
    if (n >= 0) return n;
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_State *outer = pl_vm_running(pl_vm_from_lua(L));
        pl_vm_set_running(pl_vm_from_lua(L), co);
        lua_resetthread(co); /* its to-be-closed variables, under the budget */
        pl_vm_set_running(pl_vm_from_lua(L), outer);
        if (pl_vm_over(L)) return pl_vm_abort(L);
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int guard_wrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, wrapped_call, 1);
    return 1;
}

/* coroutine.close runs the coroutine's __close metamethods: under the
 * budget, and an abort inside them ends the run. */
static int guard_close(lua_State *L) {
    lua_CFunction lua_close_fn = lua_tocfunction(L, lua_upvalueindex(1));
    lua_State *co = check_coroutine(L, 1);
    pl_vm *vm = pl_vm_from_lua(L);
    lua_State *outer = pl_vm_running(vm);
    pl_vm_set_running(vm, co);
    int n = lua_close_fn(L);
    pl_vm_set_running(vm, outer);
    if (pl_vm_over(L)) return pl_vm_abort(L);
    return n;
}

/* --- setmetatable: no finalizers -------------------------------------------------- */

/* Lua marks a table for finalization when its metatable has a __gc field
 * at setmetatable; the finalizer then runs during some later garbage
 * collection, with hooks off, outside every budget. So a metatable with
 * __gc is refused (a field added afterwards is never called). */
static int guard_setmetatable(lua_State *L) {
    int mt = lua_type(L, 2);
    if (mt == LUA_TTABLE) {
        lua_pushvalue(L, lua_upvalueindex(2)); /* "__gc" */
        int has_gc = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (has_gc)
            return luaL_error(L, "setmetatable: __gc is not available to bot scripts "
                                 "(a finalizer would run outside the script's budgets)");
    }
    /* a table without a metatable yet (a new object, nearly always) has
     * none protected: what Lua's setmetatable does then, without its
     * lookup of __metatable */
    if (lua_type(L, 1) == LUA_TTABLE && (mt == LUA_TTABLE || mt == LUA_TNIL) && !lua_getmetatable(L, 1)) {
        lua_settop(L, 2);
        lua_setmetatable(L, 1);
        return 1;
    }
    lua_CFunction lua_setmetatable_fn = lua_tocfunction(L, lua_upvalueindex(1));
    return lua_setmetatable_fn(L);
}

/* --- type: Lua's, with the names made once --------------------------------------- */

/* What the library's type does, but the name of each type is an upvalue
 * (a string made when the state was): the library's pushes it from C, a
 * string lookup per call, and the runtime's modules and the scripts call
 * type on every step. */
static int fast_type(lua_State *L) {
    int t = lua_type(L, 1);
    luaL_argcheck(L, t != LUA_TNONE, 1, "value expected");
    lua_pushvalue(L, lua_upvalueindex(t + 1));
    return 1;
}

static void install_type(lua_State *L) {
    lua_pushglobaltable(L);
    for (int t = 0; t < LUA_NUMTYPES; t++) lua_pushstring(L, lua_typename(L, t));
    lua_pushcclosure(L, fast_type, LUA_NUMTYPES);
    lua_setfield(L, -2, "type");
    lua_pop(L, 1);
}

/* setmetatable's upvalues: Lua's own, and the name "__gc" */
static void install_setmetatable(lua_State *L) {
    lua_pushglobaltable(L);
    lua_getfield(L, -1, "setmetatable");
    lua_pushliteral(L, "__gc");
    lua_pushcclosure(L, guard_setmetatable, 2);
    lua_setfield(L, -2, "setmetatable");
    lua_pop(L, 1);
}

/* --- load: text only, bounded in size, charged by size ------------------------- */

/* Pushes the whole text a reader function gives, or nil and a reason. */
static int read_chunk(lua_State *L) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    for (;;) {
        lua_pushvalue(L, 1);
        lua_call(L, 0, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "reader function must return a string");
        size_t len = lua_rawlen(L, -1);
        if (len == 0) {
            lua_pop(L, 1);
            break;
        }
        total += len;
        if (total > PL_MAX_LOAD_SOURCE) return luaL_error(L, "the chunk is over the %d KB that load accepts", PL_MAX_LOAD_SOURCE / 1024);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* load(chunk [, name [, mode [, env]]]): whatever the mode says, only text
 * is compiled (a binary chunk fails to load). */
static int guard_load(lua_State *L) {
    int env = !lua_isnone(L, 4) ? 4 : 0;
    const char *chunkname;
    if (lua_type(L, 1) == LUA_TSTRING) {
        chunkname = luaL_optstring(L, 2, lua_tostring(L, 1));
        lua_pushvalue(L, 1);
    } else {
        chunkname = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        read_chunk(L);
    }
    size_t len;
    const char *source = lua_tolstring(L, -1, &len);
    if (len > PL_MAX_LOAD_SOURCE) {
        luaL_pushfail(L);
        lua_pushfstring(L, "load: the chunk is %d KB, over the %d KB that load accepts", (int)(len / 1024),
                        PL_MAX_LOAD_SOURCE / 1024);
        return 2;
    }
    /* compiling costs a few instructions' worth per byte */
    if (!pl_vm_charge(L, (long)(len >> 2) + 1)) return pl_vm_abort(L);
    int status = luaL_loadbufferx(L, source, len, chunkname, "t");
    if (status == LUA_ERRMEM) return pl_vm_abort_over(L, PL_OVER_MEMORY);
    if (pl_vm_over(L)) return pl_vm_abort(L);
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

/* --- collectgarbage: only what cannot defeat the memory budget, charged --- */

static int guard_collectgarbage(lua_State *L) {
    const char *opt = luaL_optstring(L, 1, "collect");
    size_t heap = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024;
    if (strcmp(opt, "count") == 0) {
        lua_pushnumber(L, (lua_Number)heap / 1024.0 + (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
        return 1;
    }
    int full = strcmp(opt, "collect") == 0;
    if (!full && strcmp(opt, "step") != 0)
        return luaL_error(L, "collectgarbage('%s') is not available to bot scripts", opt);
    /* a full collection walks the whole heap; a step a small part of it */
    if (!pl_vm_charge(L, (long)(heap >> (full ? PL_BYTES_PER_UNIT_SHIFT + 1 : 10)))) return pl_vm_abort(L);
    lua_gc(L, full ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
    lua_pushinteger(L, 0);
    return 1;
}

/* --- table functions whose loops the script sizes --------------------------------- */

/* table.insert([t,] [pos,] v) as Lua's, charged for the elements it shifts
 * (however large __len says the table is). */
static int guard_tinsert(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer e = luaL_len(L, 1) + 1; /* first empty slot */
    lua_Integer pos;
    switch (lua_gettop(L)) {
    case 2: pos = e; break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        if (!pl_vm_charge(L, items(e - pos))) return pl_vm_abort(L);
        for (lua_Integer i = e; i > pos; i--) {
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default: return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

/* table.remove(t [, pos]) as Lua's, charged likewise. */
static int guard_tremove(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    if (!pl_vm_charge(L, items(size - pos))) return pl_vm_abort(L);
    lua_geti(L, 1, pos);
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

/* Each returns the units a call with these arguments is charged before it
 * runs; arguments of the wrong type cost nothing (the function raises). */
typedef long (*cost_fn)(lua_State *L);

/* string.rep(s, n [, sep]) loops n times even for an empty string (what
 * it copies the allocator charges). */
static long cost_rep(lua_State *L) {
    lua_Integer n = lua_tointeger(L, 2);
    return items(n) >> 2;
}

/* table.move(a1, f, e, t [, a2]) moves e - f + 1 elements. */
static long cost_move(lua_State *L) {
    return items(lua_tointeger(L, 3) - lua_tointeger(L, 2) + 1);
}

/* table.sort(t [, comp]): about n log n comparisons (a Lua comparator's
 * own instructions are counted besides). */
static long cost_sort(lua_State *L) {
    if (!lua_istable(L, 1)) return 0;
    long n = items((lua_Integer)lua_rawlen(L, 1));
    long log = 1;
    while ((1L << log) < n && log < 40) log++;
    return n * log;
}

/* A scan over the string argument 1 (utf8.len, utf8.offset, tonumber,
 * os.date's format). */
static long cost_scan(lua_State *L) {
    return lua_type(L, 1) == LUA_TSTRING ? (long)(lua_rawlen(L, 1) >> PL_BYTES_PER_UNIT_SHIFT) : 0;
}

enum { COST_REP, COST_MOVE, COST_SORT, COST_SCAN };
static const cost_fn costs[] = {cost_rep, cost_move, cost_sort, cost_scan};

/* Calls the library's own function (upvalue 1; it has no upvalues of its
 * own, so calling it directly keeps the script's frame for error
 * messages) after charging what cost number upvalue 2 says the call costs. */
static int charged_call(lua_State *L) {
    lua_CFunction fn = lua_tocfunction(L, lua_upvalueindex(1));
    cost_fn cost = costs[lua_tointeger(L, lua_upvalueindex(2))];
    if (!pl_vm_charge(L, cost(L))) return pl_vm_abort(L);
    return fn(L);
}

/* Replaces table[name] (a C function of the library; the global name when
 * table is NULL) by a charged call. */
static void charge(lua_State *L, const char *table, const char *name, int cost) {
    if (table) lua_getglobal(L, table);
    else lua_pushglobaltable(L);
    lua_getfield(L, -1, name);
    lua_pushinteger(L, cost);
    lua_pushcclosure(L, charged_call, 2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* Replaces table[name] (or the global name when table is NULL) by fn;
 * with keep_original, fn gets the library's own function as upvalue 1. */
static void replace(lua_State *L, const char *table, const char *name, lua_CFunction fn, int keep_original) {
    if (table) lua_getglobal(L, table);
    else lua_pushglobaltable(L);
    if (keep_original) lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, keep_original);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

void pl_guard_install(lua_State *L) {
    replace(L, NULL, "pcall", guard_pcall, 0);
    replace(L, NULL, "xpcall", guard_xpcall, 0);
    install_setmetatable(L);
    replace(L, NULL, "load", guard_load, 0);
    replace(L, NULL, "collectgarbage", guard_collectgarbage, 0);
    install_type(L);
    replace(L, "coroutine", "resume", guard_resume, 0);
    replace(L, "coroutine", "wrap", guard_wrap, 0);
    replace(L, "coroutine", "close", guard_close, 1);
    replace(L, "table", "insert", guard_tinsert, 0);
    replace(L, "table", "remove", guard_tremove, 0);
    charge(L, "string", "rep", COST_REP);
    charge(L, "table", "move", COST_MOVE);
    charge(L, "table", "sort", COST_SORT);
    charge(L, "utf8", "len", COST_SCAN);
    charge(L, "utf8", "offset", COST_SCAN);
    charge(L, NULL, "tonumber", COST_SCAN);
    charge(L, "os", "date", COST_SCAN); /* a conversion per character of the format */
}
