/* guard: the sandbox's own versions of the base-library functions through
 * which a script could outlive its budgets — catch an abort and go on
 * (pcall, xpcall, coroutine.resume, coroutine.wrap, coroutine.close, load),
 * run code outside every budget (a __gc finalizer), or do unbounded work
 * inside one C call (string.rep, table.insert/remove/move/sort, load,
 * collectgarbage ...). vm.c installs them into every bot state.
 *
 * What each C function of the sandbox may cost, and how it is bounded:
 * - Lua instructions: the count hook; time: the hook and a deadline timer.
 * - building a value (strings, tables, results of C functions): charged by
 *   the allocator by size (run.c), so 150,000 copies of a 20 MB string stop
 *   after the first few;
 * - loops in C whose length the script chooses (string.rep's count, the
 *   range of table.move, shifting by table.insert/remove whatever __len
 *   says, table.sort's comparisons, scans by utf8.len/offset, tonumber and
 *   os.date's format):
 *   charged here before the work starts;
 * - pattern matching: pattern.c counts its steps;
 * - load: at most PL_MAX_LOAD_SOURCE bytes, charged by size;
 * - everything else is O(1), or bounded by the stack (table.unpack,
 *   string.byte, utf8.codepoint: about a million values at most) or by its
 *   arguments' size. */
#ifndef PL_GUARD_H
#define PL_GUARD_H

#include <lua.h>

/* The largest chunk `load` compiles. */
#define PL_MAX_LOAD_SOURCE (256 * 1024)

/* Replaces the functions above in L's globals and libraries. */
void pl_guard_install(lua_State *L);

#endif
