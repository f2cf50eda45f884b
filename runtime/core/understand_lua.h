/* understand_lua: what parley.catalog gives runtime/lua/parley/understand.lua
 * of the catalog's words (catalog/catalog_lexicon.h): the lexicon to scan
 * what a shopper typed with, what each of its phrases means, and the
 * phrase written without spaces that a typed run is a typo of. */
#ifndef PL_UNDERSTAND_LUA_H
#define PL_UNDERSTAND_LUA_H

#include <lua.h>

#include "catalog/catalog.h"

/* Sets lexicon, meanings and near in the table on top of the stack (the
 * parley.catalog module); catalog gives a state's catalog:
 *   catalog.lexicon() -> the catalog's lexicon (scan and words, as
 *     parley.lexicon's), built on first use;
 *   catalog.meanings(entry) -> {{kind = "product"|"part"|"tag"|"option"|
 *     "choice", sku =, name =, value =, locale =}, ...} for a 1-based entry;
 *   catalog.near(run) -> entry, distance, or nil. */
void pl_understand_lua_add(lua_State *L, const pl_catalog *(*catalog)(lua_State *L));

#endif
