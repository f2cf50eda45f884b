/* lexicon_lua: `parley.lexicon`, lexicon.c as scripts of the runtime see
 * it; see lexicon_lua.h. */
#include "lexicon_lua.h"

#include <lauxlib.h>
#include <string.h>

#include "base/lexicon.h"
#include "run.h"

#define LEXICON_MT "parley.lexicon*"

typedef struct {
    const pl_lexicon *lex;
    pl_lexicon *owned; /* NULL for a borrowed one */
} lexicon_box;

static int lexicon_gc(lua_State *L) {
    lexicon_box *box = luaL_checkudata(L, 1, LEXICON_MT);
    pl_lexicon_free(box->owned);
    box->lex = box->owned = NULL;
    return 0;
}

static void set_metatable(lua_State *L);

void pl_lexicon_lua_push_borrowed(lua_State *L, const pl_lexicon *lex) {
    lexicon_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->lex = lex;
    box->owned = NULL;
    set_metatable(L);
}

/* Adds entry i of the lists at 1 and 2 (a phrase that fails to add, empty
 * of units, still takes its number: a placeholder that matches nothing). */
static int add_phrase(lua_State *L, pl_lexicon *lex, lua_Integer i, long *next) {
    lua_rawgeti(L, 1, i);
    const char *phrase = lua_tostring(L, -1);
    if (!phrase) return luaL_error(L, "lexicon.new: phrase %d is not a string", (int)i);
    lua_rawgeti(L, 2, i);
    int fuzzy = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!pl_vm_charge(L, (long)(lua_rawlen(L, -1) >> 2) + 4)) return pl_vm_abort(L);
    long got = pl_lexicon_add(lex, phrase, fuzzy);
    if (got < 0) got = pl_lexicon_add(lex, "\x01", 0); /* a unit no folded text has */
    lua_pop(L, 1);
    if (got != *next) return luaL_error(L, "not enough memory");
    (*next)++;
    return 0;
}

static int lexicon_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    lexicon_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->lex = box->owned = NULL;
    set_metatable(L);
    box->owned = pl_lexicon_new(alloc, ud);
    if (!box->owned) return luaL_error(L, "not enough memory");
    box->lex = box->owned;
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    long next = 0;
    for (lua_Integer i = 1; i <= n; i++) add_phrase(L, box->owned, i, &next);
    if (!pl_lexicon_seal(box->owned)) return luaL_error(L, "not enough memory");
    return 1;
}

/* Charges a scan's work; a scan stopped at its limit ends the run (its
 * answer would be incomplete). */
static int charge_work(lua_State *L, size_t work) {
    if (work > PL_LEXICON_MAX_WORK) return 0;
    return pl_vm_charge(L, (long)work * 8);
}

/* Pushes the list of the units' strings. */
static void push_units(lua_State *L, const char *folded, const pl_lexicon_units *units) {
    lua_createtable(L, (int)units->count, 0);
    for (size_t i = 0; i < units->count; i++) {
        lua_pushlstring(L, folded + units->unit[i].start, units->unit[i].len);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static int lexicon_scan(lua_State *L) {
    lexicon_box *box = luaL_checkudata(L, 1, LEXICON_MT);
    size_t len;
    const char *folded = luaL_checklstring(L, 2, &len);
    if (!box->lex) return luaL_error(L, "lexicon is closed");
    if (!pl_vm_charge(L, (long)(len >> 2) + 1)) return pl_vm_abort(L);
    pl_lexicon_units units;
    pl_lexicon_span spans[PL_LEXICON_MAX_UNITS];
    size_t work;
    pl_lexicon_cut(folded, &units);
    size_t n = pl_lexicon_scan(box->lex, folded, &units, spans, PL_LEXICON_MAX_UNITS, &work);
    if (!charge_work(L, work)) return pl_vm_abort(L);
    push_units(L, folded, &units);
    lua_createtable(L, (int)n * 4, 0);
    for (size_t i = 0; i < n; i++) {
        const lua_Integer at = (lua_Integer)i * 4;
        lua_pushinteger(L, (lua_Integer)spans[i].first + 1);
        lua_rawseti(L, -2, at + 1);
        lua_pushinteger(L, (lua_Integer)spans[i].count);
        lua_rawseti(L, -2, at + 2);
        lua_pushinteger(L, (lua_Integer)spans[i].entry + 1);
        lua_rawseti(L, -2, at + 3);
        lua_pushinteger(L, (lua_Integer)spans[i].distance);
        lua_rawseti(L, -2, at + 4);
    }
    return 2;
}

/* lexicon:words(folded) -> units, found: every one-unit phrase each unit
 * matches, flat: unit (1-based), entry (1-based), distance, three
 * integers each. */
static int lexicon_words(lua_State *L) {
    lexicon_box *box = luaL_checkudata(L, 1, LEXICON_MT);
    size_t len;
    const char *folded = luaL_checklstring(L, 2, &len);
    if (!box->lex) return luaL_error(L, "lexicon is closed");
    if (!pl_vm_charge(L, (long)(len >> 2) + 1)) return pl_vm_abort(L);
    enum { MAX_FOUND = 4 * PL_LEXICON_MAX_UNITS };
    pl_lexicon_units units;
    pl_lexicon_span found[MAX_FOUND];
    size_t work;
    pl_lexicon_cut(folded, &units);
    size_t n = pl_lexicon_words(box->lex, folded, &units, found, MAX_FOUND, &work);
    if (!charge_work(L, work)) return pl_vm_abort(L);
    push_units(L, folded, &units);
    lua_createtable(L, (int)n * 3, 0);
    for (size_t i = 0; i < n; i++) {
        const lua_Integer at = (lua_Integer)i * 3;
        lua_pushinteger(L, (lua_Integer)found[i].first + 1);
        lua_rawseti(L, -2, at + 1);
        lua_pushinteger(L, (lua_Integer)found[i].entry + 1);
        lua_rawseti(L, -2, at + 2);
        lua_pushinteger(L, (lua_Integer)found[i].distance);
        lua_rawseti(L, -2, at + 3);
    }
    return 2;
}

static int lexicon_distance(lua_State *L) {
    size_t alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen);
    const char *b = luaL_checklstring(L, 2, &blen);
    lua_Integer limit = luaL_optinteger(L, 3, 2);
    luaL_argcheck(L, limit >= 0 && limit <= 8, 3, "a limit from 0 to 8");
    if (alen > 4 * PL_LEXICON_MAX_FUZZY_CPS || blen > 4 * PL_LEXICON_MAX_FUZZY_CPS)
        return luaL_error(L, "lexicon.distance: words of at most %d characters", PL_LEXICON_MAX_FUZZY_CPS);
    if (!pl_vm_charge(L, (long)((alen + 1) * (blen + 1) >> 2))) return pl_vm_abort(L);
    lua_pushinteger(L, (lua_Integer)pl_lexicon_distance(a, alen, b, blen, (unsigned)limit));
    return 1;
}

static int lexicon_allowed(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    lua_pushinteger(L, n < 0 ? 0 : (lua_Integer)pl_lexicon_allowed((size_t)n));
    return 1;
}

/* Sets the lexicons' metatable on the userdata on top (made on first use). */
static void set_metatable(lua_State *L) {
    static const luaL_Reg methods[] = {{"scan", lexicon_scan}, {"words", lexicon_words}, {NULL, NULL}};
    if (luaL_newmetatable(L, LEXICON_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, lexicon_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
}

int pl_lexicon_lua_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"new", lexicon_new}, {"distance", lexicon_distance}, {"allowed", lexicon_allowed}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
