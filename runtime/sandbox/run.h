/* run: how a sandboxed state's code runs, under the budgets of each
 * handler run (a turn, a load): instructions (a count hook, set by a
 * watchdog once the run lasts: see PL_WATCH_WINDOW_US), time (checked by
 * the same hook and by every charge), memory (the state's counting
 * allocator; C code that allocates for the script reserves its bytes here
 * too) and work done inside C functions (charged by those functions in
 * instruction-equivalents, see pl_vm_charge). A run over any budget is
 * abandoned without running more merchant code: the hook yields the run's
 * coroutine out and the caller drops it, so no message handler, finalizer
 * or __close of the script runs after the budget is gone (guard.c keeps
 * pcall, xpcall and the coroutine functions from handing control back).
 *
 * This is the sandbox's ground floor: guard.c, pattern_lua.c and the JSON
 * files charge and abort through it; vm.c makes the state it runs. */
#ifndef PL_RUN_H
#define PL_RUN_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "usage.h"

typedef struct pl_vm pl_vm;

/* Work done in C is charged in instruction-equivalents: this many bytes
 * scanned (as 1 << shift) count as one instruction. */
#define PL_BYTES_PER_UNIT_SHIFT 6

/* The watchdog: a run executes without the count hook (which makes every
 * Lua instruction about twice as costly) for at most its first
 * PL_WATCH_WINDOW_US of running time (all its slices together); a timer
 * then sets the hook, which counts from there on and charges the time
 * before at PL_WATCH_INSTRUCTIONS_PER_US (a fast machine's rate, so the
 * estimate errs towards the limit). A state or a run (the fallback's tenth of a turn's
 * budgets) whose instruction limit is below PL_WATCH_FROM_LIMIT is counted
 * from the first instruction (the window could hold more than such a
 * limit). Time budgets count the thread's CPU time. */
#define PL_WATCH_WINDOW_US 2000
#define PL_WATCH_INSTRUCTIONS_PER_US 150
#define PL_WATCH_FROM_LIMIT 500000

/* The budgets of one handler run (a turn, a load). A run may be several
 * slices (resumes) when it waits for I/O in between; only the slices count
 * towards its time. */
typedef struct pl_budget {
    long used;            /* instructions and charged C work */
    long limit;
    long time_limit_ms;   /* 0: the state's */
    int64_t time_used_us; /* wall time of the slices that ended */
    int64_t slice_start_wall_us; /* the monotonic clock when this slice began */
    int64_t slice_start_cpu_us; /* the thread's CPU clock when this slice began */
    const volatile void *thread_mark; /* tells the run's thread (a thread-local's address) */
    int64_t elsewhere_us; /* time the loop worked for the run (pl_turn_on_loop) */
    pl_over over;         /* set once, when the first budget runs out */
    int counting;         /* the count hook is on (the watchdog fired, or exact mode) */
    char where[160];      /* "file:line" of the script where the run was left */
    int log_lines;        /* lines the run's scripts logged (modules.c caps them) */
    lua_State *root;      /* the run's own coroutine (set by pl_vm_resume) */
    void *owner;          /* who runs it (the turn), for C functions that start I/O */
} pl_budget;

pl_vm *pl_vm_from_lua(lua_State *L);

/* A coroutine for a turn, anchored in the registry (*ref): a finished one
 * from the state's pool, else a new one. pl_vm_recycle_thread gives one
 * back once its run returned normally (else it only lets it go: a failed
 * run's coroutine is never resumed nor closed again). */
lua_State *pl_vm_new_thread(pl_vm *vm, int *ref);
/* Whether co is one of the turns' coroutines (guard.c keeps scripts from
 * resuming or closing them: a pooled one serves another shopper's turn). */
int pl_vm_is_turn_thread(lua_State *L, lua_State *co);
void pl_vm_recycle_thread(pl_vm *vm, lua_State *co, int ref);

/* Resumes coroutine co (nargs on its stack) with budget active and the
 * memory limit enforced. Returns the lua_resume status; *nres as lua_resume.
 * A run that went over a budget returns LUA_ERRRUN (or LUA_ERRMEM) with the
 * message on co's top, however the script tried to catch it; co must then
 * be dropped, never resumed or closed (closing would run its __close). The
 * slice's time is added to the budget and to the bot's usage. */
int pl_vm_resume(pl_vm *vm, lua_State *co, int nargs, int *nres, pl_budget *budget);

/* The budget of the run executing now in vm (NULL between runs). */
pl_budget *pl_vm_current_budget(const pl_vm *vm);

/* Charges `units` instruction-equivalents of work that a C function does
 * for the script (pattern-matching steps, bytes copied or scanned) to the
 * run executing in L's state, and checks the run's time. Returns 1 while
 * the run is within its budgets, 0 once it is over one: the caller frees
 * what it holds and returns pl_vm_abort(L) at once. Outside a run (the
 * runtime setting a state up) it always returns 1. Charge as the work goes
 * (every few thousand steps), or before it when its size is known. */
int pl_vm_charge(lua_State *L, long units);

/* Abandons the run of L's state from a C function that the script called:
 * `return pl_vm_abort(L);`. Marks the run over its instruction budget if
 * nothing else was exceeded yet. Never returns control to the script. */
int pl_vm_abort(lua_State *L);
/* The same, naming the budget that ran out when none was marked yet. */
int pl_vm_abort_over(lua_State *L, pl_over why);

/* Whether the run executing in L's state is over a budget. */
int pl_vm_over(lua_State *L);

/* For long C work that holds no Lua state (jansson parsing for the
 * script): 1 while the run now executing in vm is within its budgets
 * (checking the time), 0 once it is over one; 1 between runs. */
int pl_vm_within_budget(pl_vm *vm);

/* C memory made for the script counts in the state's memory budget:
 * pl_vm_mem_try_reserve before allocating, pl_vm_mem_release with the same
 * count when freeing. A refusal (0: the bytes would go over the budget of a
 * running script) leaves the run as it is: the caller fails the allocation,
 * frees what it holds, may collect garbage (as Lua does before it refuses
 * one of its own allocations) and try once more, and ends the run itself
 * (pl_vm_abort_over with PL_OVER_MEMORY) when that fails too. */
int pl_vm_mem_try_reserve(pl_vm *vm, size_t bytes);
void pl_vm_mem_release(pl_vm *vm, size_t bytes);

/* The thread running script code now (the run's coroutine or one of the
 * script's own), kept by pl_vm_resume and guard.c's coroutine.resume. */
void pl_vm_set_running(pl_vm *vm, lua_State *L);

/* Around a wait of a turn thread for the loop (which runs a C function on
 * the thread's coroutine meanwhile): the watchdog's signal must not touch
 * the coroutine then. pause returns what resume gets back. */
lua_State *pl_vm_pause_watch(void);
void pl_vm_resume_watch(lua_State *target);
/* The loop worked us µs for the run of L (pl_turn_on_loop): it counts
 * towards the run's time, its instructions (at the watchdog's rate) and
 * its bot's account, checked at the run's next hook or charge. */
void pl_vm_charge_elsewhere(lua_State *L, int64_t us);
lua_State *pl_vm_running(const pl_vm *vm);

/* For a coroutine that died with status: a new "file:line: message" naming
 * the innermost frame of the bot's own code (not the runtime's), and, when
 * traceback is not NULL, a new traceback. The error object is at co's top. */
char *pl_vm_describe_error(pl_vm *vm, lua_State *co, int status, char **traceback);

#endif
