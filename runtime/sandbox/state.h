/* state: the struct of a sandboxed state, shared by the two files that
 * make it: vm.c (creating the state, what scripts see, loading files) and
 * run.c (the budgets its runs go by). Nothing outside runtime/sandbox/
 * includes this header; everyone else goes through vm.h and run.h. */
#ifndef PL_STATE_H
#define PL_STATE_H

#include <lua.h>
#include <stddef.h>

#include "usage.h"

typedef struct pl_vm pl_vm;
struct pl_budget; /* run.h's */

/* Small blocks (Lua's strings, tables, closures of up to SMALL_MAX bytes)
 * freed by the state are kept in per-size lists and handed out again: a
 * turn allocates and frees thousands of them, and a list is a fraction of
 * malloc's cost. At most SMALL_KEEP_BYTES are kept per state. */
#define SMALL_STEP 16
#define SMALL_MAX 256
#define SMALL_CLASSES (SMALL_MAX / SMALL_STEP)
#define SMALL_KEEP_BYTES (256 * 1024)

typedef struct free_block {
    struct free_block *next;
} free_block;

/* Finished turn coroutines kept for the next turns (their stacks are
 * already grown), at most this many per state. */
#define THREAD_POOL 8

struct pl_vm {
    lua_State *L;
    lua_State *pool[THREAD_POOL];
    int pool_ref[THREAD_POOL]; /* their registry references */
    int pooled;
    free_block *small[SMALL_CLASSES];
    size_t small_kept; /* bytes in the lists */
    int refs;
    size_t mem_used;
    size_t mem_limit;
    int mem_enforce;     /* set only while merchant code runs */
    struct pl_budget *current; /* the run now executing, if any */
    lua_State *running;  /* the thread executing script code now, if any */
    size_t refused;      /* the size of the allocation refused last, else 0 */
    char *bot_name;
    char *bot_dir;
    long instruction_limit;
    long time_limit_ms;
    int watched; /* the watchdog sets the hook (else counted from the start) */
    pl_usage *usage;
    void *userdata;
};

/* The state's allocator (lua_newstate's): counts every byte against the
 * memory budget and keeps small blocks for reuse (run.c). */
void *pl_vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Frees the kept small blocks, once the state is closed. */
void pl_vm_free_blocks(pl_vm *vm);
/* Sets the main thread's hook (which every new thread copies) for a state
 * whose runs are counted from their first instruction (!vm->watched). */
void pl_vm_count_from_start(pl_vm *vm);

#endif
