/* pattern_lua: the Lua binding of pattern.c; see pattern_lua.h.
 * Owns the argument rules of the four functions (start positions, plain
 * find, gmatch's iterator, gsub's replacements), which follow Lua 5.4's
 * string library, and the exchange rate between matcher steps and the
 * run's budget. Holds no memory of its own across a call into Lua: the
 * matcher lives on the C stack, the results in Lua buffers, so an error
 * or an abort may leave any of these functions at any point. */
#include "pattern_lua.h"

#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

#include "base/pattern.h"
#include "run.h"

/* Budget units per matcher step. On the pathological '.-.-.-.-b$' against
 * a run of 'a' (27 million steps for 60 of them), a step takes ~2.1 ns in
 * Lua's own matcher and ~2.0 ns in this one, a VM instruction ~1.9 ns in a
 * plain state (and about twice that in a bot's, whose count hook makes
 * every instruction slower): one step is one unit, which errs towards
 * charging a pattern more than the Lua code that would do the same. */
#define UNITS_PER_STEP 1

/* The matcher's charge callback, every PL_PATTERN_CHARGE_EVERY steps. */
static int charge(void *L, long steps) { return pl_vm_charge(L, steps * UNITS_PER_STEP); }

/* Ends a call's matching: charges its last steps, and ends the call when
 * the match did not finish (r < 0; never returns then). The last steps
 * (fewer than PL_PATTERN_CHARGE_EVERY) are only added to the run's count,
 * which the hook checks within a thousand instructions: pl_vm_charge would
 * read the clock, which costs as much as a short find. */
static void finish(lua_State *L, pl_pattern *m, int r) {
    if (r == PL_PATTERN_OVER) pl_vm_abort(L);
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm ? pl_vm_current_budget(vm) : NULL;
    long steps = pl_pattern_take_uncharged(m);
    if (b) b->used += steps * UNITS_PER_STEP;
    if (r == PL_PATTERN_ERROR) luaL_error(L, "%s", pl_pattern_error(m));
}

/* The 0-based offset of Lua's start position pos (negative counts from the
 * end, 0 and anything before the start mean the start); may be past len. */
static size_t start_offset(lua_Integer pos, size_t len) {
    if (pos > 0) return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len) return 0;
    return len - (size_t)-pos;
}

/* Pushes capture i of the match [start, end): a string, or a position. */
static void push_capture(lua_State *L, pl_pattern *m, int i, size_t start, size_t end) {
    pl_pattern_capture c;
    if (pl_pattern_get_capture(m, i, start, end, &c) != PL_PATTERN_YES) luaL_error(L, "%s", pl_pattern_error(m));
    if (c.len == PL_PATTERN_CAP_POSITION) lua_pushinteger(L, (lua_Integer)(c.init - m->src) + 1);
    else lua_pushlstring(L, c.init, (size_t)c.len);
}

/* Pushes the captures of the match [start, end), or the whole match when
 * the pattern has none and `whole` asks for it; returns how many. */
static int push_captures(lua_State *L, pl_pattern *m, size_t start, size_t end, int whole) {
    int n = m->level == 0 && whole ? 1 : m->level;
    luaL_checkstack(L, n, "too many captures");
    for (int i = 0; i < n; i++) push_capture(L, m, i, start, end);
    return n;
}

/* --- find and match -------------------------------------------------------- */

static int find_or_match(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    int plain = find && (lua_toboolean(L, 4) || pl_pattern_is_plain(p, lp));
    int anchored = !plain && lp > 0 && p[0] == '^';
    pl_pattern m;
    pl_pattern_init(&m, s, ls, p + anchored, lp - anchored, charge, L);
    size_t start, end;
    int r = plain ? pl_pattern_find_plain(&m, init, &start, &end) : pl_pattern_find(&m, init, anchored, &start, &end);
    finish(L, &m, r);
    if (r == PL_PATTERN_NO) {
        luaL_pushfail(L);
        return 1;
    }
    if (!find) return push_captures(L, &m, start, end, 1);
    lua_pushinteger(L, (lua_Integer)start + 1);
    lua_pushinteger(L, (lua_Integer)end);
    return 2 + push_captures(L, &m, start, end, 0);
}

static int str_find(lua_State *L) { return find_or_match(L, 1); }
static int str_match(lua_State *L) { return find_or_match(L, 0); }

/* --- gmatch ----------------------------------------------------------------- */

/* Where the iterator goes on (a '^' is not an anchor for gmatch). */
typedef struct {
    const char *s, *p; /* subject and pattern, kept alive as upvalues 1 and 2 */
    size_t ls, lp;
    size_t next;       /* the offset to try next */
    size_t last_end;   /* where the last match ended, SIZE_MAX before the first */
} gmatch_state;

/* The iterator: upvalue 3 is its gmatch_state. An empty match where the
 * last match ended does not count (Lua 5.4's rule). */
static int gmatch_next(lua_State *L) {
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    pl_pattern m;
    pl_pattern_init(&m, g->s, g->ls, g->p, g->lp, charge, L);
    for (size_t at = g->next; at <= g->ls; at++) {
        size_t start, end;
        int r = pl_pattern_find(&m, at, 1, &start, &end);
        if (r == PL_PATTERN_NO || (r == PL_PATTERN_YES && end == g->last_end)) continue;
        finish(L, &m, r);
        g->next = g->last_end = end;
        return push_captures(L, &m, start, end, 1);
    }
    finish(L, &m, PL_PATTERN_NO);
    return 0;
}

static int str_gmatch(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    lua_settop(L, 2);
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    *g = (gmatch_state){.s = s, .p = p, .ls = ls, .lp = lp};
    g->next = init > ls ? ls + 1 : init;
    g->last_end = SIZE_MAX;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* --- gsub ------------------------------------------------------------------- */

/* Adds capture i of the match [start, end) to b as %1 .. %9 do; returns
 * the steps it took besides the escape's own (a position is a number
 * turned into text). */
static long add_capture(lua_State *L, pl_pattern *m, luaL_Buffer *b, int i, size_t start, size_t end) {
    pl_pattern_capture c;
    if (pl_pattern_get_capture(m, i, start, end, &c) != PL_PATTERN_YES) luaL_error(L, "%s", pl_pattern_error(m));
    if (c.len != PL_PATTERN_CAP_POSITION) {
        luaL_addlstring(b, c.init, (size_t)c.len);
        return 0;
    }
    lua_pushinteger(L, (lua_Integer)(c.init - m->src) + 1);
    luaL_addvalue(b);
    return 28;
}

/* Adds the replacement string (argument 3) for the match [start, end):
 * %0 is the match, %1 .. %9 its captures, %% a '%'. Counted as matcher
 * steps: a long replacement with many escapes, used for every match,
 * would be work no budget sees (an escape takes a few steps' time, one
 * that writes a position a few dozen). */
static void add_string(lua_State *L, pl_pattern *m, luaL_Buffer *b, size_t start, size_t end) {
    size_t len;
    const char *r = lua_tolstring(L, 3, &len);
    const char *stop = r + len;
    const char *pct;
    long steps = 1 + (long)(len >> 6);
    while ((pct = memchr(r, '%', (size_t)(stop - r))) != NULL) {
        luaL_addlstring(b, r, (size_t)(pct - r));
        int c = pct + 1 < stop ? pct[1] : '\0';
        if (c == '%') luaL_addchar(b, '%');
        else if (c == '0') luaL_addlstring(b, m->src + start, end - start);
        else if (c >= '1' && c <= '9') steps += add_capture(L, m, b, c - '1', start, end);
        else luaL_error(L, "invalid use of '%c' in replacement string", '%');
        steps += 4;
        r = pct + 2;
    }
    luaL_addlstring(b, r, (size_t)(stop - r));
    if (!pl_pattern_count(m, steps)) pl_vm_abort(L);
}

/* Adds what replaces the match [start, end) per the replacement (argument
 * 3, of type tr); returns whether that changed anything: a function or
 * table that gives false or nil keeps the match as it is. */
static int add_value(lua_State *L, pl_pattern *m, luaL_Buffer *b, size_t start, size_t end, int tr) {
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        lua_call(L, push_captures(L, m, start, end, 1), 1);
    } else if (tr == LUA_TTABLE) {
        push_capture(L, m, 0, start, end);
        lua_gettable(L, 3);
    } else {
        add_string(L, m, b, start, end);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, m->src + start, end - start);
        return 0;
    }
    if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int str_gsub(lua_State *L) {
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                     "string/function/table");
    int anchored = lp > 0 && p[0] == '^';
    pl_pattern m;
    pl_pattern_init(&m, src, ls, p + anchored, lp - anchored, charge, L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t at = 0, last_end = SIZE_MAX;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max) {
        size_t start, end;
        int r = pl_pattern_find(&m, at, 1, &start, &end);
        if (r < 0) finish(L, &m, r);
        if (r == PL_PATTERN_YES && end != last_end) {
            n++;
            changed |= add_value(L, &m, &b, start, end, tr);
            at = last_end = end;
        } else if (at < ls) {
            luaL_addchar(&b, src[at++]);
        } else {
            break;
        }
        if (anchored) break;
    }
    finish(L, &m, PL_PATTERN_NO);
    if (!changed) {
        lua_pushvalue(L, 1); /* the subject itself, even a number */
    } else {
        luaL_addlstring(&b, src + at, ls - at);
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void pl_pattern_install(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}, {NULL, NULL},
    };
    lua_getglobal(L, "string");
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
