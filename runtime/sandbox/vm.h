/* vm: one bot's sandboxed Lua 5.4 state.
 *
 * The state holds only the allow list of DESIGN.md section 4: base (no
 * dofile/loadfile, text-only load), string, table, math, utf8, coroutine,
 * os.time/clock/date, and the modules its creator opens (the runtime's own,
 * through package.preload: pl_vm_config.open_modules). `require` also
 * finds .lua files inside the bot's folder, nothing else. Its runs go by
 * the budgets of run.h, which this header brings along.
 *
 * A vm is reference counted: the bot holds one reference for its current
 * state, and every turn in flight holds one, so a reload can swap states
 * while old turns finish on the state they started on. */
#ifndef PL_VM_H
#define PL_VM_H

#include <lua.h>
#include <stddef.h>

#include "run.h"

typedef struct {
    const char *bot_name;  /* for log lines */
    const char *bot_dir;   /* require and load_file resolve inside it */
    size_t memory_limit;   /* bytes for the whole state */
    long instruction_limit; /* per handler run */
    long time_limit_ms;     /* per handler run: CPU time spent running, not waiting for I/O */
    pl_usage *usage;        /* the bot's CPU account, shared by its states (borrowed), or NULL */
    /* Called (protected) once the allow list is open: adds the modules of
     * the layers above the sandbox to package.preload (the runtime's, from
     * core/modules.c). NULL: the allow list alone. */
    lua_CFunction open_modules;
} pl_vm_config;

/* Creates the sandboxed state with the config's modules preloaded. */
pl_vm *pl_vm_new(const pl_vm_config *config, char **err);

void pl_vm_retain(pl_vm *vm);
void pl_vm_release(pl_vm *vm);

lua_State *pl_vm_lua(pl_vm *vm);
const char *pl_vm_bot_name(const pl_vm *vm);
const char *pl_vm_bot_dir(const pl_vm *vm);
long pl_vm_instruction_limit(const pl_vm *vm);
long pl_vm_time_limit_ms(const pl_vm *vm);
size_t pl_vm_memory_used(const pl_vm *vm);
size_t pl_vm_memory_limit(const pl_vm *vm);

/* Per-vm pointer slot for the owner (the bot loader keeps its catalog here). */
void pl_vm_set_userdata(pl_vm *vm, void *ud);
void *pl_vm_userdata(const pl_vm *vm);

/* The largest script file a bot may have. */
#define PL_MAX_SCRIPT_FILE (1024 * 1024)

/* Compiles a file of the bot (path relative to the bot folder) as a text
 * chunk named after that path and pushes it onto L (a thread of vm); on
 * error pushes nothing and sets *err to "path:line: message". */
int pl_vm_load_file(pl_vm *vm, lua_State *L, const char *relpath, char **err);

/* Runs the function below nargs arguments on L's top in a fresh coroutine
 * under `percent` of the state's budgets (loading whole files gets more
 * room than a turn, a fallback reply less); on success leaves nres results on L (nres fixed), on
 * error sets *err (see pl_vm_describe_error) and leaves nothing. A function
 * that tries to yield is an error here. */
int pl_vm_run(pl_vm *vm, int nargs, int nres, long percent, char **err);

#endif
