/* modules: registers the runtime's modules in package.preload and holds the
 * thin Lua bindings of the C subsystems that have no file of their own
 * (log, parley.text, parley.catalog); see modules.h. */
#include "modules.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/money.h"
#include "base/text.h"
#include "sandbox/json_lua.h"
#include "sandbox/lexicon_lua.h"
#include "understand_lua.h"
#include "sandbox/vm.h"

static const char catalog_key = 'c';
static const char internal_key = 'i';
#define CATALOG_MT "parley.catalog*"

/* --- log ----------------------------------------------------------------- */

/* A script may not flood the log: each run logs at most LOG_LINES_PER_RUN
 * lines (one more says how many were dropped), each cut at LOG_LINE_MAX. */
#define LOG_LINES_PER_RUN 100
#define LOG_LINE_MAX 2000

/* Whether this line of the running script may be logged; notes the first
 * one dropped. */
static int log_allowed(lua_State *L, pl_vm *vm) {
    pl_budget *b = vm ? pl_vm_current_budget(vm) : NULL;
    if (!b) return 1;
    if (++b->log_lines <= LOG_LINES_PER_RUN) return 1;
    if (b->log_lines == LOG_LINES_PER_RUN + 1) {
        luaL_where(L, 2);
        pl_warn("[%s] %smore than %d log lines in one run: the rest of this run's are dropped",
                pl_vm_bot_name(vm), lua_tostring(L, -1), LOG_LINES_PER_RUN);
        lua_pop(L, 1);
    }
    return 0;
}

/* Joins the arguments like print does, prefixed with the bot and position. */
static int log_at(lua_State *L, pl_log_level level) {
    int n = lua_gettop(L);
    pl_vm *vm = pl_vm_from_lua(L);
    if (!log_allowed(L, vm)) return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (vm) {
        lua_pushfstring(L, "[%s] ", pl_vm_bot_name(vm));
        luaL_addvalue(&b);
    }
    luaL_where(L, 1); /* "file:line: " */
    luaL_addvalue(&b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
        if (i < n) luaL_addchar(&b, ' ');
    }
    luaL_pushresult(&b);
    size_t len;
    const char *line = lua_tolstring(L, -1, &len);
    if (len > LOG_LINE_MAX)
        pl_log(level, "%.*s... (%zu more bytes)", LOG_LINE_MAX, line, len - LOG_LINE_MAX);
    else
        pl_log(level, "%s", line);
    return 0;
}

static int log_debug(lua_State *L) { return log_at(L, PL_LOG_DEBUG); }
static int log_info(lua_State *L) { return log_at(L, PL_LOG_INFO); }
static int log_warn(lua_State *L) { return log_at(L, PL_LOG_WARN); }
static int log_error(lua_State *L) { return log_at(L, PL_LOG_ERROR); }

static int open_log(lua_State *L) {
    static const luaL_Reg fns[] = {{"debug", log_debug}, {"info", log_info}, {"warn", log_warn},
                                   {"error", log_error}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* --- parley.text ------------------------------------------------------- */

/* The text functions' work grows with their input: charged before it
 * (folding decodes and normalises every character, a few instructions'
 * worth each; a phrase is compared at every place it may start). */
static int text_fold(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (!pl_vm_charge(L, (long)(len >> 2))) return pl_vm_abort(L);
    char *folded = pl_text_fold(s, len);
    if (!folded) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid-utf8");
        return 2;
    }
    lua_pushstring(L, folded);
    free(folded);
    return 1;
}

static long phrase_charge(size_t hay_len, size_t needle_len) {
    return (long)((hay_len >> 4) + 1) * (long)(1 + (needle_len >> 6));
}

static int text_has_phrase(lua_State *L) {
    size_t hay_len, needle_len;
    const char *hay = luaL_checklstring(L, 1, &hay_len);
    const char *needle = luaL_checklstring(L, 2, &needle_len);
    if (!pl_vm_charge(L, phrase_charge(hay_len, needle_len))) return pl_vm_abort(L);
    lua_pushboolean(L, pl_text_has_phrase(hay, needle));
    return 1;
}

static int text_hash(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (!pl_vm_charge(L, (long)(len >> PL_BYTES_PER_UNIT_SHIFT))) return pl_vm_abort(L);
    lua_pushinteger(L, (lua_Integer)(pl_text_hash(s, len) & 0x7fffffffffffffffULL));
    return 1;
}

static int internal_strip_emoji(lua_State *L);

/* text.strip_emoji(s) -> s without its emoji (what a persona with emoji =
 * false leaves out, see pl_text_strip_emoji) and how many there were;
 * raises for text that is not UTF-8. For a style hook's own rules (no emoji
 * on SMS). */
static int text_strip_emoji(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    if (internal_strip_emoji(L) == 0) return luaL_argerror(L, 1, "not valid UTF-8");
    return 2;
}

static int open_text(lua_State *L) {
    static const luaL_Reg fns[] = {{"fold", text_fold},
                                   {"has_phrase", text_has_phrase},
                                   {"hash", text_hash},
                                   {"strip_emoji", text_strip_emoji},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* --- parley.money ---------------------------------------------------------- */

/* money.format(amount, currency [, locale]) -> "€4.50" */
static int money_format(lua_State *L) {
    if (!lua_isinteger(L, 1)) return luaL_argerror(L, 1, "an integer amount in minor units");
    const char *currency = luaL_checkstring(L, 2);
    char *text = pl_money_format((long long)lua_tointeger(L, 1), currency, luaL_optstring(L, 3, "en"));
    lua_pushstring(L, text);
    free(text);
    return 1;
}

static int money_decimals(lua_State *L) {
    lua_pushinteger(L, pl_money_decimals(luaL_checkstring(L, 1)));
    return 1;
}

static int open_money(lua_State *L) {
    static const luaL_Reg fns[] = {{"format", money_format}, {"decimals", money_decimals}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* --- parley.catalog -------------------------------------------------------- */

static int catalog_gc(lua_State *L) {
    pl_catalog **box = luaL_checkudata(L, 1, CATALOG_MT);
    pl_catalog_free(*box);
    *box = NULL;
    return 0;
}

void pl_modules_set_catalog(lua_State *L, pl_catalog *catalog) {
    pl_catalog **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = catalog;
    if (luaL_newmetatable(L, CATALOG_MT)) {
        lua_pushcfunction(L, catalog_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &catalog_key);
}

const pl_catalog *pl_modules_catalog(lua_State *L) {
    const pl_catalog *c = NULL;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &catalog_key) == LUA_TUSERDATA)
        c = *(pl_catalog **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return c;
}

static const pl_catalog *check_catalog(lua_State *L) {
    const pl_catalog *c = pl_modules_catalog(L);
    if (!c) luaL_error(L, "this state has no catalog");
    return c;
}

/* catalog.products() -> list of product tables, in file order. */
static int catalog_products(lua_State *L) {
    pl_json_push(L, pl_catalog_products(check_catalog(L)));
    return 1;
}

/* catalog.search(words [, max]) -> list of {sku =, score =, named =}, best
 * first; named is true when the words name the product's title. */
static int catalog_search(lua_State *L) {
    const pl_catalog *c = check_catalog(L);
    size_t words_len;
    const char *words = luaL_checklstring(L, 1, &words_len);
    lua_Integer max = luaL_optinteger(L, 2, 10);
    if (max < 1 || max > 100) return luaL_argerror(L, 2, "between 1 and 100");
    /* every product is compared with the words */
    long products = (long)json_array_size(pl_catalog_products(c));
    if (!pl_vm_charge(L, products * (long)(1 + (words_len >> 4)))) return pl_vm_abort(L);
    pl_catalog_hit hits[100];
    size_t n = pl_catalog_search(c, words, hits, (size_t)max);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, hits[i].sku);
        lua_setfield(L, -2, "sku");
        lua_pushinteger(L, hits[i].score);
        lua_setfield(L, -2, "score");
        lua_pushboolean(L, hits[i].named);
        lua_setfield(L, -2, "named");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int open_catalog(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"products", catalog_products}, {"search", catalog_search}, {NULL, NULL}};
    luaL_newlib(L, fns);
    pl_understand_lua_add(L, pl_modules_catalog);
    return 1;
}

/* --- privileged helpers for runtime modules -------------------------------- */

/* The names the helpers read and write, made once: upvalues of every
 * helper (a pushed copy instead of a lookup of the C string each time). */
static const char *const internal_names[] = {"title", "payload", "choices", "__tostring"};
#define NAME_TITLE lua_upvalueindex(1)
#define NAME_PAYLOAD lua_upvalueindex(2)
#define NAME_CHOICES lua_upvalueindex(3)
#define NAME_TOSTRING lua_upvalueindex(4)
#define INTERNAL_NAMES ((int)(sizeof internal_names / sizeof *internal_names))

/* Pushes t[name] (with its metamethods) for the table at the absolute
 * index idx, name one of the upvalues above; returns its type. */
static int get_named(lua_State *L, int idx, int name) {
    lua_pushvalue(L, name);
    return lua_gettable(L, idx);
}

/* internal.where(fn) -> "file:line" where a Lua function is defined. */
static int internal_where(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_Debug ar;
    lua_pushvalue(L, 1);
    lua_getinfo(L, ">S", &ar);
    if (ar.linedefined > 0) lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
    else lua_pushstring(L, ar.short_src);
    return 1;
}

/* internal.caller(level) -> "file:line" of a stack level, or nil. */
static int internal_caller(lua_State *L) {
    lua_Debug ar;
    int level = (int)luaL_checkinteger(L, 1);
    if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
        return 0;
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
    return 1;
}

/* internal.strip_emoji(s) -> s without emoji (parley.tone, for a persona
 * with emoji = false) and how many were removed; s itself when none; nil
 * when s is not valid UTF-8 (as utf8.len finds it: the caller strips such
 * text code point by code point, which raises). It stands for the
 * utf8.len call that used to come first: the same check, charged as that
 * scan is (guard.c), and the same error for what is not text. */
static int internal_strip_emoji(lua_State *L) {
    size_t len, removed;
    int type = lua_type(L, 1);
    if (type != LUA_TSTRING && type != LUA_TNUMBER) {
        const char *got = luaL_getmetafield(L, 1, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                          : type == LUA_TLIGHTUSERDATA                   ? "light userdata"
                                                                        : luaL_typename(L, 1);
        return luaL_error(L, "bad argument #1 to 'len' (string expected, got %s)", got);
    }
    long scan = type == LUA_TSTRING ? (long)(lua_rawlen(L, 1) >> PL_BYTES_PER_UNIT_SHIFT) : 0;
    const char *s = lua_tolstring(L, 1, &len);
    /* the check and the count in one pass, charged as the two were */
    int valid = pl_text_count_emoji(s, len, &removed);
    /* (both charges in one: the scan's, and the stripping's when there is any) */
    if (!pl_vm_charge(L, scan + (valid ? (long)(len >> PL_BYTES_PER_UNIT_SHIFT) : 0))) return pl_vm_abort(L);
    if (!valid) return 0;
    if (removed == 0) {
        lua_pushvalue(L, 1);
    } else {
        luaL_Buffer b;
        char *out = luaL_buffinitsize(L, &b, len);
        luaL_pushresultsize(&b, pl_text_strip_emoji(s, len, out, &removed));
    }
    lua_pushinteger(L, (lua_Integer)removed);
    return 2;
}

/* internal.first_phrase(folded_text, {folded_phrase, ...}) -> the index of
 * the first phrase that text.has_phrase finds in the text, or nothing: the
 * engine's intent matching in one call, charged as that many has_phrase. */
static int internal_first_phrase(lua_State *L) {
    size_t hay_len;
    const char *hay = luaL_checklstring(L, 1, &hay_len);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t needle_len;
        lua_rawgeti(L, 2, i);
        const char *needle = lua_tolstring(L, -1, &needle_len);
        if (!needle) return luaL_error(L, "phrase %d is not a string", (int)i);
        if (!pl_vm_charge(L, phrase_charge(hay_len, needle_len))) return pl_vm_abort(L);
        int hit = pl_text_has_phrase(hay, needle);
        lua_pop(L, 1);
        if (hit) {
            lua_pushinteger(L, i);
            return 1;
        }
    }
    return 0;
}

/* internal.choices(list, choices, n) -> the new length of choices, once
 * list's items (up to the first nil, as ipairs walks) are appended to it
 * from choices[n + 1] on as {title =, payload =}: a string item is both;
 * a table's payload is its title when it has none. An item that is
 * neither a string nor a table with a title string, or whose payload is
 * no string, ends the walk: then also its index and "title" or "payload".
 * Titles are taken as they are (c:choices finishes them). Items are read
 * with their metamethods, as c:choices' own loop read them (the title
 * twice), and charged a unit each, as table.move charges an element. */
static int internal_choices(lua_State *L) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_checkinteger(L, 3);
    lua_settop(L, 3);
    for (lua_Integer i = 1;; i++) {
        int kind = lua_geti(L, 1, i); /* the item: 4 */
        if (kind == LUA_TNIL) break;
        if (!pl_vm_charge(L, 1)) return pl_vm_abort(L);
        const char *bad = NULL;
        if (kind == LUA_TSTRING) {
            lua_pushvalue(L, 4); /* title: 5 */
            lua_pushvalue(L, 4); /* payload: 6 */
        } else if (kind != LUA_TTABLE || get_named(L, 4, NAME_TITLE) != LUA_TSTRING) {
            bad = "title";
        } else {
            lua_pop(L, 1);
            get_named(L, 4, NAME_TITLE);
            if (get_named(L, 4, NAME_PAYLOAD) == LUA_TNIL) {
                lua_pop(L, 1);
                lua_pushvalue(L, 5);
            }
            if (lua_type(L, 6) != LUA_TSTRING) bad = "payload";
        }
        if (bad) {
            lua_pushinteger(L, n);
            lua_pushinteger(L, i);
            lua_pushstring(L, bad);
            return 3;
        }
        lua_createtable(L, 0, 2); /* 7, set raw: it has no metatable */
        lua_pushvalue(L, NAME_TITLE);
        lua_pushvalue(L, 5);
        lua_rawset(L, 7);
        lua_pushvalue(L, NAME_PAYLOAD);
        lua_pushvalue(L, 6);
        lua_rawset(L, 7);
        lua_seti(L, 2, ++n);
        lua_settop(L, 3);
    }
    lua_pushinteger(L, n);
    return 1;
}

/* Whether tostring gives the value on top of L as it is, with no call: a
 * string or a number whose metatable (strings share one, which a script
 * can reach) has no __tostring. *strings caches the answer for strings
 * (-1: not looked up yet). */
static int own_text(lua_State *L, int *strings) {
    int type = lua_type(L, -1);
    if (type != LUA_TSTRING && type != LUA_TNUMBER) return 0;
    if (type == LUA_TSTRING && *strings >= 0) return *strings;
    int own = 1;
    if (lua_getmetatable(L, -1)) {
        lua_pushvalue(L, NAME_TOSTRING);
        own = lua_rawget(L, -2) == LUA_TNIL;
        lua_pop(L, 2);
    }
    if (type == LUA_TSTRING) *strings = own;
    return own;
}

/* Pieces kept on the stack before they are joined (within LUA_MINSTACK). */
#define FILL_JOIN 12

/* internal.fill(pieces, vars) -> the text of a template from the pieces
 * parley.tone parsed it into when its placeholders are plain names
 * ({text, name, text, ..., name, text}): each name's value is vars[name]
 * (read with its metamethods) as tostring writes it. Or nil and the first
 * name without a value (every value is read and written all the same, as
 * the tone's Lua did). Charged a unit a placeholder. The pieces are joined
 * on the stack by lua_concat, which writes a number as tostring does. */
static int internal_fill(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_istable(L, 2) && luaL_getmetafield(L, 2, "__index") == LUA_TNIL) {
        /* what indexing it in Lua said (luaL_error gives the caller's file:line) */
        return luaL_error(L, "attempt to index a %s value (local 'vars')", luaL_typename(L, 2));
    }
    lua_settop(L, 2);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1), missing = 0;
    if (!pl_vm_charge(L, (long)(n >> 1))) return pl_vm_abort(L);
    int strings = -1, pieces = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (i % 2 == 0) {
            lua_gettable(L, 2);
            if (lua_isnil(L, -1)) {
                if (!missing) missing = i;
                lua_pop(L, 1);
                continue;
            }
            if (!own_text(L, &strings)) {
                luaL_tolstring(L, -1, NULL);
                lua_remove(L, -2);
            }
        }
        if (++pieces == FILL_JOIN) {
            lua_concat(L, pieces);
            pieces = 1;
        }
    }
    if (missing) {
        lua_pushnil(L);
        lua_rawgeti(L, 1, missing);
        return 2;
    }
    lua_concat(L, pieces);
    return 1;
}

/* internal.offered(replies) -> the choices of every reply in one new list,
 * in order, or nothing when none has any: the engine's note of what the
 * shopper may type next turn. Lists are walked up to their first nil, as
 * ipairs walks them, and read with their metamethods. */
static int internal_offered(lua_State *L) {
    lua_settop(L, 1);
    int list = 0;
    lua_Integer n = 0;
    for (lua_Integer i = 1; lua_geti(L, 1, i) != LUA_TNIL; i++) { /* the reply: 2 (3 with the list) */
        if (get_named(L, 2 + list, NAME_CHOICES) != LUA_TNIL && lua_toboolean(L, -1)) {
            for (lua_Integer j = 1; lua_geti(L, -1, j) != LUA_TNIL; j++) {
                if (!list) {
                    lua_createtable(L, 4, 0);
                    lua_insert(L, 2);
                    list = 1;
                }
                lua_rawseti(L, 2, ++n);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return list;
}

static void push_internal(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &internal_key) == LUA_TTABLE) return;
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"where", internal_where}, {"caller", internal_caller}, {"strip_emoji", internal_strip_emoji},
        {"first_phrase", internal_first_phrase}, {"choices", internal_choices}, {"fill", internal_fill},
        {"offered", internal_offered}, {NULL, NULL}};
    luaL_newlibtable(L, fns);
    for (int i = 0; i < INTERNAL_NAMES; i++) lua_pushstring(L, internal_names[i]);
    luaL_setfuncs(L, fns, INTERNAL_NAMES);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &internal_key);
}

/* --- embedded Lua modules -------------------------------------------------- */

int pl_modules_load_embedded(lua_State *L, const char *name) {
    for (const pl_embedded_module *m = pl_embedded_modules; m->name; m++) {
        if (strcmp(m->name, name) != 0) continue;
        if (luaL_loadbufferx(L, m->source, m->length, m->chunkname, "t") != LUA_OK)
            lua_error(L);
        return 1;
    }
    return 0;
}

static int embedded_loader(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    if (!pl_modules_load_embedded(L, name)) return luaL_error(L, "no embedded module %s", name);
    lua_pushstring(L, name);
    push_internal(L);
    lua_call(L, 2, 1);
    return 1;
}

/* --- the registry ------------------------------------------------------------ */

/* The C modules of the layers above, added at start (pl_modules_add). */
#define ADDED_MAX 8
static luaL_Reg added[ADDED_MAX];
static size_t nadded;

void pl_modules_add(const char *name, lua_CFunction open) {
    for (size_t i = 0; i < nadded; i++) {
        if (strcmp(added[i].name, name) == 0) {
            added[i].func = open;
            return;
        }
    }
    if (nadded == ADDED_MAX) abort(); /* a build with more layers than slots: make ADDED_MAX larger */
    added[nadded++] = (luaL_Reg){name, open};
}

static void preload(lua_State *L, const luaL_Reg *modules, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lua_pushcfunction(L, modules[i].func);
        lua_setfield(L, -2, modules[i].name);
    }
}

void pl_modules_register(lua_State *L) {
    static const luaL_Reg c_modules[] = {{"json", pl_json_open},     {"log", open_log},
                                         {"parley.text", open_text}, {"parley.money", open_money},
                                         {"parley.catalog", open_catalog},
                                         {"parley.lexicon", pl_lexicon_lua_open}};
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    preload(L, c_modules, sizeof c_modules / sizeof c_modules[0]);
    preload(L, added, nadded);
    for (const pl_embedded_module *m = pl_embedded_modules; m->name; m++) {
        lua_pushcfunction(L, embedded_loader);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
}

int pl_modules_open(lua_State *L) {
    pl_modules_register(L);
    lua_pushcfunction(L, log_info);
    lua_setglobal(L, "print");
    return 0;
}
