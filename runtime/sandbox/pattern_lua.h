/* pattern_lua: string.find, string.match, string.gmatch and string.gsub of
 * a bot's state, on pattern.c's counted matcher. They return and raise
 * exactly what Lua 5.4's own do; the difference is that their work is
 * charged to the run executing (run.h), and a match that takes the run over
 * its budget ends the run instead of holding the loop. */
#ifndef PL_PATTERN_LUA_H
#define PL_PATTERN_LUA_H

#include <lua.h>

/* Sets the four functions in L's global `string` table (which string
 * methods use too). vm.c calls it for every bot state. */
void pl_pattern_install(lua_State *L);

#endif
