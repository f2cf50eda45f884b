/* vm: one bot's sandboxed Lua 5.4 state and the budgets it runs under.
 *
 * The state holds only the allow list of DESIGN.md section 4: base (no
 * dofile/loadfile, text-only load), string, table, math, utf8, coroutine,
 * os.time/clock/date, and the runtime's own modules through package.preload.
 * `require` also finds .lua files inside the bot's folder, nothing else.
 *
 * Budgets are enforced here in C: a counting allocator (memory per bot,
 * checked while merchant code runs) and a count hook (instructions per
 * handler run) that, once over budget, fires on every line so that pcall in
 * a script cannot swallow the abort.
 *
 * A vm is reference counted: the bot holds one reference for its current
 * state, and every turn in flight holds one, so a reload can swap states
 * while old turns finish on the state they started on. */
#ifndef PL_VM_H
#define PL_VM_H

#include <lua.h>
#include <stddef.h>

typedef struct pl_vm pl_vm;

typedef struct {
    const char *bot_name;  /* for log lines */
    const char *bot_dir;   /* require and load_file resolve inside it */
    size_t memory_limit;   /* bytes for the whole state */
    long instruction_limit; /* per handler run */
} pl_vm_config;

/* The instruction budget of one handler run (a turn, a load). */
typedef struct {
    long used;
    long limit;
    int exceeded;
    lua_State *root; /* the run's own coroutine (set by pl_vm_resume) */
    void *owner;     /* who runs it (the turn), for C functions that start I/O */
} pl_budget;

/* Creates the sandboxed state with the runtime modules preloaded. */
pl_vm *pl_vm_new(const pl_vm_config *config, char **err);
void pl_vm_retain(pl_vm *vm);
void pl_vm_release(pl_vm *vm);

lua_State *pl_vm_lua(pl_vm *vm);
pl_vm *pl_vm_from_lua(lua_State *L);
const char *pl_vm_bot_name(const pl_vm *vm);
const char *pl_vm_bot_dir(const pl_vm *vm);
long pl_vm_instruction_limit(const pl_vm *vm);
size_t pl_vm_memory_used(const pl_vm *vm);

/* Per-vm pointer slot for the owner (the bot loader keeps its catalog here). */
void pl_vm_set_userdata(pl_vm *vm, void *ud);
void *pl_vm_userdata(const pl_vm *vm);

/* Compiles a file of the bot (path relative to the bot folder) as a text
 * chunk named after that path and pushes it onto L (a thread of vm); on
 * error pushes nothing and sets *err to "path:line: message". */
int pl_vm_load_file(pl_vm *vm, lua_State *L, const char *relpath, char **err);

/* Resumes coroutine co (nargs on its stack) with budget active and the
 * memory limit enforced. Returns the lua_resume status; *nres as lua_resume.
 * A run that went over its instruction budget is an error even if a script
 * caught the abort inside a coroutine of its own: then the status is
 * LUA_ERRRUN with the message on co's top. */
int pl_vm_resume(pl_vm *vm, lua_State *co, int nargs, int *nres, pl_budget *budget);

/* The budget of the run executing now in vm (NULL between runs). */
pl_budget *pl_vm_current_budget(const pl_vm *vm);

/* Runs the function below nargs arguments on L's top in a fresh coroutine
 * under a budget; on success leaves nres results on L (nres fixed), on error
 * sets *err (see pl_vm_describe_error) and leaves nothing. A function that
 * tries to yield is an error here. */
int pl_vm_run(pl_vm *vm, int nargs, int nres, long instruction_limit, char **err);

/* For a coroutine that died with status: a new "file:line: message" naming
 * the innermost frame of the bot's own code (not the runtime's), and, when
 * traceback is not NULL, a new traceback. The error object is at co's top. */
char *pl_vm_describe_error(pl_vm *vm, lua_State *co, int status, char **traceback);

#endif
