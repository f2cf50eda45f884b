/* json_alloc: jansson's counting allocator; see json_alloc.h.
 * Owns the thread's open scope. Uses run.h's reservations and the
 * allocator's malloc_usable_size (jemalloc's in ./parley, which rounds a
 * block up to its size class: a script's JSON is charged that much). */
#define _GNU_SOURCE
#include "json_alloc.h"

#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <threads.h>

/* Each thread runs its own bots' states, so each has its own scope. */
static _Thread_local pl_json_scope *open_scope;

/* Reserves bytes for the scope's allocation; once one is refused, every
 * later one is: jansson's call fails anyway, and it goes on after a failed
 * allocation in places (its lexer saves each byte of a string and ignores
 * the failure), where each attempt would otherwise allocate the whole
 * buffer again. */
static int reserve(pl_json_scope *scope, size_t bytes) {
    if (!scope->refused && pl_vm_mem_try_reserve(scope->vm, bytes)) return 1;
    scope->refused = 1;
    return 0;
}

/* A block's size is what malloc_usable_size says, at allocation and at
 * free alike, rather than a size header in front of each block: a header
 * would make every jansson block of the process one that only jansson may
 * free, and the runtime frees json_dumps's text with free() in many places.
 * jansson only allocates and frees (no realloc), so the two always agree.
 * The requested size is reserved before malloc, so a refusal costs no
 * allocation; the rest of the usable size after. */
static void *counting_malloc(size_t size) {
    pl_json_scope *scope = open_scope;
    if (!scope || !scope->vm) return malloc(size);
    /* one parse can take longer than the run's time budget (a value per
     * allocation): past the budget, jansson is failed like for memory */
    if ((++scope->allocations & 1023) == 0 && !pl_vm_within_budget(scope->vm)) scope->refused = 1;
    if (!reserve(scope, size)) return NULL;
    void *block = malloc(size);
    if (block && reserve(scope, malloc_usable_size(block) - size)) return block;
    pl_vm_mem_release(scope->vm, size);
    free(block);
    return NULL;
}

static void counting_free(void *block) {
    pl_json_scope *scope = open_scope;
    if (block && scope && scope->vm) pl_vm_mem_release(scope->vm, malloc_usable_size(block));
    free(block);
}

static once_flag installed = ONCE_FLAG_INIT;

/* Installing late is harmless: blocks are plain malloc blocks whichever
 * function allocated them, and none allocated before counts. */
static void install(void) { json_set_alloc_funcs(counting_malloc, counting_free); }

void pl_json_scope_open(pl_json_scope *scope, pl_vm *vm) {
    call_once(&installed, install);
    scope->vm = vm;
    scope->refused = 0;
    scope->allocations = 0;
    scope->outer = open_scope;
    open_scope = scope;
}

int pl_json_scope_close(pl_json_scope *scope) {
    open_scope = scope->outer;
    return scope->refused;
}

void *pl_json_scope_malloc(size_t size) { return counting_malloc(size); }

void pl_json_scope_free(void *block) { counting_free(block); }
