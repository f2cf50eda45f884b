/* spec: the spec runtime that `parley test` runs busted in and `parley
 * replay` re-runs conversations in — the bot opened in-process with the real
 * pipeline and an in-memory store, offline, and a plain Lua state (io and
 * os, the runtime's modules) that reaches it through `parley.testing.native`.
 * testing.reset (and, in `parley test`, the start of every `it`) replaces
 * the app with a fresh one: ask pl_spec_app for the current one. */
#ifndef PL_CLI_SPEC_H
#define PL_CLI_SPEC_H

#include <lua.h>

#include "app/app.h"

typedef struct pl_spec pl_spec;

/* Opens the bot of dir in the spec runtime (with coverage, counting the
 * steps and templates it reaches); warnings and errors logged from then on
 * are kept for testing.errors(), off the terminal. PL_OK and *spec (new,
 * the caller closes it), or PL_ERR with *err (new) set. */
int pl_spec_open(const char *dir, int coverage, pl_spec **spec, char **err);
/* The app the specs talk to now (borrowed; a reset replaces it). */
pl_app *pl_spec_app(pl_spec *spec);
/* Closes what pl_spec_open opened and puts parley's clock back. */
void pl_spec_close(pl_spec *spec);
/* A new Lua state for spec (the caller closes it): the standard libraries,
 * the runtime's modules and `parley.testing.native`; os.exit raises an
 * error that pl_spec_exit_code recognises instead of ending the process. */
lua_State *pl_spec_state(pl_spec *spec);
/* After a failed lua_pcall in a pl_spec_state: 1 and *code when the error
 * is os.exit(code), else 0. */
int pl_spec_exit_code(lua_State *L, int *code);

#endif
