/* understand_lua: the catalog's words for the runtime's understanding; see
 * understand_lua.h. */
#include "understand_lua.h"

#include <lauxlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/catalog_lexicon.h"
#include "sandbox/lexicon_lua.h"
#include "sandbox/run.h"

/* The state's catalog (modules.c's, given at registration). */
static const pl_catalog *(*catalog_of)(lua_State *L);

static const pl_catalog_lexicon *lexicon_of(lua_State *L) {
    pl_catalog *c = (pl_catalog *)catalog_of(L); /* (the lexicon is built once, on first use) */
    if (!c) luaL_error(L, "this state has no catalog");
    /* building folds every title, alias and choice once: charged once */
    if (!pl_catalog_lexicon_built(c) && !pl_vm_charge(L, (long)json_array_size(pl_catalog_products(c)) * 16 + 1))
        pl_vm_abort(L);
    return pl_catalog_lexicon_of(c);
}

static int catalog_lexicon(lua_State *L) {
    pl_lexicon_lua_push_borrowed(L, pl_catalog_lexicon_words(lexicon_of(L)));
    return 1;
}

static const char *const KINDS[] = {"product", "part", "tag", "option", "choice"};

static void set_string(lua_State *L, const char *field, const char *value) {
    if (!value) return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, field);
}

static int catalog_meanings(lua_State *L) {
    const pl_catalog_lexicon *lex = lexicon_of(L);
    lua_Integer entry = luaL_checkinteger(L, 1);
    const pl_meaning *list = NULL;
    size_t n = entry >= 1 ? pl_catalog_lexicon_meanings(lex, (uint32_t)(entry - 1), &list) : 0;
    if (!pl_vm_charge(L, (long)n * 4 + 1)) return pl_vm_abort(L);
    const json_t *products = pl_catalog_products(catalog_of(L));
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const pl_meaning *m = &list[i];
        lua_createtable(L, 0, 4);
        set_string(L, "kind", KINDS[m->kind]);
        if (m->product != PL_NO_PRODUCT)
            set_string(L, "sku", json_string_value(json_object_get(json_array_get(products, m->product), "sku")));
        set_string(L, "name", m->name);
        set_string(L, "value", m->value);
        set_string(L, "locale", m->locale);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int catalog_near(lua_State *L) {
    const pl_catalog_lexicon *lex = lexicon_of(L);
    size_t len;
    const char *run = luaL_checklstring(L, 1, &len);
    if (!pl_vm_charge(L, (long)(len >> 2) * 64 + 1)) return pl_vm_abort(L);
    unsigned distance = 0;
    long entry = pl_catalog_lexicon_near(lex, run, len, &distance);
    if (entry < 0) return 0;
    lua_pushinteger(L, (lua_Integer)entry + 1);
    lua_pushinteger(L, (lua_Integer)distance);
    return 2;
}

void pl_understand_lua_add(lua_State *L, const pl_catalog *(*catalog)(lua_State *L)) {
    catalog_of = catalog;
    static const luaL_Reg fns[] = {
        {"lexicon", catalog_lexicon}, {"meanings", catalog_meanings}, {"near", catalog_near}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
