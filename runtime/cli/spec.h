/* spec: the spec runtime that `parley test` runs busted in and `parley
 * replay` re-runs conversations in — the bot opened in-process with the real
 * pipeline and an in-memory store, and a plain Lua state (io and os, the
 * runtime's modules) that reaches it through `parley.testing.native`. */
#ifndef PL_CLI_SPEC_H
#define PL_CLI_SPEC_H

#include <lua.h>

#include "app/app.h"

/* Opens the bot of dir in the spec runtime; warnings and errors logged from
 * then on are kept for testing.errors(), off the terminal. PL_OK, or PL_ERR
 * with *err (new) set. */
int pl_spec_open(const char *dir, pl_app **app, char **err);
/* Closes what pl_spec_open opened. */
void pl_spec_close(pl_app *app);
/* A new Lua state for app (the caller closes it): the standard libraries,
 * the runtime's modules and `parley.testing.native`; os.exit raises an
 * error that pl_spec_exit_code recognises instead of ending the process. */
lua_State *pl_spec_state(pl_app *app);
/* After a failed lua_pcall in a pl_spec_state: 1 and *code when the error
 * is os.exit(code), else 0. */
int pl_spec_exit_code(lua_State *L, int *code);

#endif
