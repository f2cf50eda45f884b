/* json_alloc: jansson's allocator for the whole process, which counts in a
 * bot's memory budget what jansson allocates on behalf of that bot's script.
 *
 * jansson has one allocator per process (json_set_alloc_funcs), and the
 * runtime also uses jansson for itself (sessions, the store, channels), so
 * only the blocks allocated and freed while a scope is open on this thread
 * count: a script's JSON call opens one around each jansson call it makes
 * (json_lua.c). Each such block's size is reserved in the scope's vm when
 * allocated (pl_vm_mem_try_reserve) and released when freed
 * (pl_vm_mem_release); a refused reservation makes the allocation fail, so
 * jansson fails and the scope says so. The run is not over then: the
 * caller frees what it holds, collects garbage and tries again, or ends
 * the run with pl_vm_abort_over(L, PL_OVER_MEMORY).
 *
 * The rule that keeps the count right: a block allocated inside a scope is
 * freed inside a scope of the same vm (a tree decoded in one scope may be
 * freed in a later one), and nothing else is freed inside a scope. The
 * runtime's own JSON never meets a scope, and blocks are plain malloc
 * blocks either way (no header), so free() stays right for json_dumps's
 * text everywhere else in the runtime. */
#ifndef PL_JSON_ALLOC_H
#define PL_JSON_ALLOC_H

#include "run.h"

typedef struct pl_json_scope {
    pl_vm *vm;                   /* whose budget counts (borrowed); NULL: nothing counts */
    int refused;                 /* a reservation was refused: jansson ran out of budget */
    unsigned allocations;        /* made in the scope, to look at the run's time now and then */
    struct pl_json_scope *outer; /* the scope open before this one on the thread */
} pl_json_scope;

/* Opens a scope on this thread (the first call installs the allocator).
 * Nothing between open and close may raise a Lua error: the scope lives in
 * the caller's frame. */
void pl_json_scope_open(pl_json_scope *scope, pl_vm *vm);

/* Closes the scope; returns 1 when a reservation was refused inside it. */
int pl_json_scope_close(pl_json_scope *scope);

/* Allocates as jansson does: counted when a scope is open, else plain
 * malloc. For text the runtime writes in jansson's place (json_lua.c's
 * writer), so that it is bounded by the same budget; free it as jansson's
 * text. */
void *pl_json_scope_malloc(size_t size);

/* Frees a block that jansson handed to the caller (json_dumps's text) as
 * jansson frees its own: inside a scope, its bytes are released. */
void pl_json_scope_free(void *block);

#endif
