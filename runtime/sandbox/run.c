/* run: how a sandboxed state's code runs — the budgets of each run (the
 * counting allocator, the watchdog and the count hook, charges and aborts),
 * the resume of a slice under them, the errors of a run described, and the
 * pool of turn coroutines; see run.h. The state itself is vm.c's. */
#define _GNU_SOURCE
#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "base/log.h"
#include "state.h"
#include "usage.h"

/* The hook runs every HOOK_STEP instructions; the budget is counted in
 * these steps, so a limit is exact to within one step. Once a run is over
 * budget the hook runs at every instruction of the threads that run. */
#define HOOK_STEP 1000
/* Allocations from this size on are charged as work (see pl_vm_alloc),
 * one unit per 1 << CHARGE_ALLOC_SHIFT bytes: filling fresh memory (a copy)
 * runs several times faster per byte than the scans of run.h's rate. */
#define CHARGE_ALLOC_FROM 4096
#define CHARGE_ALLOC_SHIFT 8

/* Every thread's extra space holds the vm (threads copy it from the main
 * thread when created), so hooks and C functions find their vm in O(1). */
pl_vm *pl_vm_from_lua(lua_State *L) { return *(pl_vm **)lua_getextraspace(L); }

static void budget_hook(lua_State *L, lua_Debug *ar);

/* --- the watchdog ---------------------------------------------------------
 * Each thread that runs scripts has a periodic POSIX timer on the
 * monotonic clock, every PL_WATCH_WINDOW_US (a high-resolution timer:
 * precise), whose signal goes to that thread only (SIGEV_THREAD_ID). At
 * each tick during a run (the first comes at most a window into it), the
 * handler sets the hook of the thread running script code to fire at the
 * next instruction (lua_sethook may be called from a signal handler, as
 * lua.c does for ^C): the hook starts counting instructions, or checks the
 * budgets again, so one slow instruction (comparing two long strings)
 * cannot carry a run far past its deadline. The timer runs while runs
 * come: a thread's first run starts it, and the handler stops it
 * (timer_settime is safe in a signal handler) after WINDOW_IDLE_TICKS
 * without one. Arming a timer for every run cost a fifth of a message
 * (reprogramming the clock's interrupt leaves the virtual machine).
 *
 * A run's time is its wall time, cheap to read, which bounds its CPU
 * time; only once that bound passes the limit is the thread's CPU clock
 * read (a system call), so that a busy machine running something else
 * meanwhile costs a run nothing. Where a slice started on that clock is
 * taken from the last tick (each reads the thread's CPU clock and the
 * monotonic one): at most the wall time since that tick more, which errs
 * in the script's favour by the time the thread was off its CPU between
 * the tick and the slice, never more than TICK_FRESH_US; without a fresh
 * tick (the timer stopped) the slice reads the clock itself. (A periodic
 * timer on the thread's CPU clock was tried as the clock: the kernel
 * delivers it at its own tick and at times reports a hundred overruns at
 * once.) A thread without the timer counts every run from its first
 * instruction. */
#define WINDOW_IDLE_TICKS 100
#define TICK_FRESH_US (2 * PL_WATCH_WINDOW_US)

static _Thread_local lua_State *volatile deadline_target;
static _Thread_local volatile unsigned long window_ticks;
static _Thread_local volatile unsigned long target_since; /* window_ticks a slice's window began at */
static _Thread_local volatile unsigned long window_idle;  /* ticks without a run */
static _Thread_local volatile int window_running;
static _Thread_local timer_t window_timer;
static _Thread_local int watch_ready; /* 1 when the timer exists, -1 when it cannot */
/* The clocks at the last tick; tick_seq changes around their writing, so
 * a reader the handler interrupted sees that its pair may be torn. */
static _Thread_local volatile int64_t tick_wall_us, tick_cpu_us;
static _Thread_local volatile unsigned long tick_seq;

static void on_watch_signal(int sig) {
    (void)sig;
    tick_seq++;
    atomic_signal_fence(memory_order_seq_cst);
    tick_wall_us = pl_monotonic_us();
    tick_cpu_us = pl_cpu_us();
    atomic_signal_fence(memory_order_seq_cst);
    tick_seq++;
    window_ticks++;
    lua_State *L = deadline_target;
    if (L) {
        window_idle = 0;
        if (window_ticks != target_since) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    } else if (++window_idle >= WINDOW_IDLE_TICKS) {
        struct itimerspec stop = {{0, 0}, {0, 0}};
        timer_settime(window_timer, 0, &stop, NULL);
        window_running = 0;
    }
}

/* Makes the calling thread's timer once; returns whether it works. */
static int watch_thread(void) {
    if (watch_ready) return watch_ready > 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watch_signal;
    sa.sa_flags = SA_RESTART; /* the loop's system calls carry on */
    sigemptyset(&sa.sa_mask);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN;
    sev._sigev_un._tid = gettid();
    if (sigaction(SIGRTMIN, &sa, NULL) != 0 || timer_create(CLOCK_MONOTONIC, &sev, &window_timer) != 0) {
        pl_warn("no watchdog timer (%s): budgets are counted from every run's first instruction", strerror(errno));
        watch_ready = -1;
        return 0;
    }
    watch_ready = 1;
    return 1;
}

/* Starts the slice's window: the next tick ends it. Returns 0 when the
 * run's earlier slices took a window already. */
static int start_window(const pl_budget *b) {
    if (b->time_used_us >= PL_WATCH_WINDOW_US) return 0;
    if (!window_running) {
        long ns = PL_WATCH_WINDOW_US * 1000L;
        struct itimerspec every = {.it_value = {0, ns}, .it_interval = {0, ns}};
        timer_settime(window_timer, 0, &every, NULL);
        window_running = 1;
    }
    window_idle = 0;
    target_since = window_ticks;
    return 1;
}

/* The thread's CPU clock when the slice began at wall (the monotonic
 * clock, just read): from the last tick when it is fresh (see above),
 * else read now. */
static int64_t slice_start_cpu(int64_t wall) {
    if (window_running) {
        unsigned long seq = tick_seq;
        atomic_signal_fence(memory_order_seq_cst);
        int64_t at = tick_wall_us, cpu = tick_cpu_us;
        atomic_signal_fence(memory_order_seq_cst);
        int64_t since = wall - at;
        if (seq != 0 && seq == tick_seq && since <= TICK_FRESH_US) return cpu + (since > 0 ? since : 0);
    }
    return pl_cpu_us();
}

/* Whether the run is past its time limit (µs): by its wall time, and then
 * by its thread's CPU clock; on another thread than the run's (a C
 * function the loop runs for a turn thread, pl_turn_on_loop) only what the
 * loop worked for it counts, the run's thread checks the rest. */
static int past_time(const pl_budget *b, int64_t limit_us) {
    if (b->thread_mark != &window_ticks) return b->elsewhere_us > limit_us;
    int64_t wall = b->time_used_us + (pl_monotonic_us() - b->slice_start_wall_us) + b->elsewhere_us;
    if (wall <= limit_us) return 0;
    return b->time_used_us + (pl_cpu_us() - b->slice_start_cpu_us) + b->elsewhere_us > limit_us;
}

/* The count hook goes on for the rest of the run: the watchdog fired (the
 * window is charged at the nominal rate), or the state is not watched. */
static void start_counting(pl_vm *vm, pl_budget *b, lua_State *L) {
    if (b->counting) return;
    b->counting = 1;
    if (vm->watched) {
        /* the window's timer is precise: a window past, the hook fires at
         * the next instruction, so more time means slower instructions (or
         * a busy machine), not more of them */
        int64_t ran = b->time_used_us + (pl_monotonic_us() - b->slice_start_wall_us);
        b->used += (long)((ran < PL_WATCH_WINDOW_US ? ran : PL_WATCH_WINDOW_US) * PL_WATCH_INSTRUCTIONS_PER_US);
    }
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
    if (b->root && b->root != L) lua_sethook(b->root, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
}

/* From now on the hook fires before every instruction of these threads. */
static void arm_hooks(pl_vm *vm, pl_budget *b) {
    if (b->root) lua_sethook(b->root, budget_hook, LUA_MASKCOUNT, 1);
    if (vm->running && vm->running != b->root) lua_sethook(vm->running, budget_hook, LUA_MASKCOUNT, 1);
}

/* Marks the run over a budget (the first reason stays) and arms the hook. */
static void mark_over(pl_vm *vm, pl_budget *b, pl_over why) {
    if (b->over == PL_OVER_NONE) b->over = why;
    arm_hooks(vm, b);
}

static long time_limit_ms(const pl_vm *vm, const pl_budget *b) {
    return b->time_limit_ms > 0 ? b->time_limit_ms : vm->time_limit_ms;
}

/* Checks the instruction and time budgets; marks the run over when one ran out. */
static int within_budget(pl_vm *vm, pl_budget *b) {
    if (b->over != PL_OVER_NONE) return 0;
    if (b->used > b->limit) {
        mark_over(vm, b, PL_OVER_INSTRUCTIONS);
        return 0;
    }
    long ms = time_limit_ms(vm, b);
    if (ms > 0 && past_time(b, (int64_t)ms * 1000)) {
        mark_over(vm, b, PL_OVER_TIME);
        return 0;
    }
    return 1;
}

static size_t small_class(size_t size) { return (size - 1) / SMALL_STEP; }

static void *block_alloc(pl_vm *vm, size_t size) {
    if (size > SMALL_MAX) return malloc(size);
    size_t c = small_class(size);
    free_block *b = vm->small[c];
    if (!b) return malloc((c + 1) * SMALL_STEP);
    vm->small[c] = b->next;
    vm->small_kept -= (c + 1) * SMALL_STEP;
    return b;
}

static void block_free(pl_vm *vm, void *block, size_t size) {
    if (size > SMALL_MAX || vm->small_kept >= SMALL_KEEP_BYTES) {
        free(block);
        return;
    }
    size_t c = small_class(size);
    free_block *b = block;
    b->next = vm->small[c];
    vm->small[c] = b;
    vm->small_kept += (c + 1) * SMALL_STEP;
}

/* realloc for Lua's blocks: the size a block was allocated with is always
 * known (osize), so a small one goes back to the list of its size. */
static void *block_realloc(pl_vm *vm, void *ptr, size_t osize, size_t nsize) {
    if (!ptr) return block_alloc(vm, nsize);
    if (osize > SMALL_MAX && nsize > SMALL_MAX) return realloc(ptr, nsize);
    if (osize <= SMALL_MAX && nsize <= SMALL_MAX && small_class(osize) == small_class(nsize)) return ptr;
    void *p = block_alloc(vm, nsize);
    /* Lua takes a shrink to never fail: the block stays as it is */
    if (!p) return nsize <= osize ? ptr : NULL;
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    block_free(vm, ptr, osize);
    return p;
}

void pl_vm_free_blocks(pl_vm *vm) {
    for (size_t c = 0; c < SMALL_CLASSES; c++) {
        for (free_block *b = vm->small[c], *next; b; b = next) {
            next = b->next;
            free(b);
        }
        vm->small[c] = NULL;
    }
    vm->small_kept = 0;
}

void *pl_vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    pl_vm *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr) block_free(vm, ptr, osize);
        vm->mem_used -= old;
        return NULL;
    }
    if (vm->mem_enforce && nsize > old && vm->mem_used + (nsize - old) > vm->mem_limit) {
        /* Lua collects garbage and asks again for the same size at once:
         * refused twice in a row, the run is over its memory budget. */
        if (vm->current && vm->refused == nsize) mark_over(vm, vm->current, PL_OVER_MEMORY);
        vm->refused = nsize;
        return NULL;
    }
    vm->refused = 0;
    void *p = block_realloc(vm, ptr, old, nsize);
    if (!p) return NULL;
    vm->mem_used = vm->mem_used - old + nsize;
    /* Building a large value is work the instruction count does not see
     * (one concatenation copies megabytes): it is charged by size. */
    if (nsize > old && nsize - old >= CHARGE_ALLOC_FROM && vm->current && vm->mem_enforce) {
        vm->current->used += (long)((nsize - old) >> CHARGE_ALLOC_SHIFT);
        within_budget(vm, vm->current);
    }
    return p;
}

int pl_vm_mem_try_reserve(pl_vm *vm, size_t bytes) {
    if (vm->mem_enforce && vm->mem_used + bytes > vm->mem_limit) return 0;
    vm->mem_used += bytes;
    return 1;
}

void pl_vm_mem_release(pl_vm *vm, size_t bytes) { vm->mem_used -= bytes < vm->mem_used ? bytes : vm->mem_used; }

static const char *over_what(pl_over why) {
    switch (why) {
    case PL_OVER_TIME: return "time";
    case PL_OVER_MEMORY: return "memory";
    default: return "instruction";
    }
}

/* The run's abort message: "instruction budget of 1000000 exceeded ...". */
static void push_over_message(lua_State *L, pl_vm *vm, const pl_budget *b) {
    if (b->over == PL_OVER_TIME)
        lua_pushfstring(L, "time budget of %d ms exceeded (a loop that never ends, or too much work?)",
                        (int)time_limit_ms(vm, b));
    else if (b->over == PL_OVER_MEMORY)
        lua_pushfstring(L, "memory budget of %d MB exceeded", (int)(vm->mem_limit >> 20));
    else
        lua_pushfstring(L, "%s budget of %d exceeded (a loop that never ends?)", over_what(b->over), (int)b->limit);
}

/* Source of the runtime's own modules, which an error does not blame. */
static int is_runtime_source(const char *source) {
    return strncmp(source, "@parley/", 8) == 0 || source[0] == '=';
}

/* Writes "file:line" of the innermost frame of the bot's own code, from
 * stack level `level` up, into where (empty when there is none). */
static void script_position(lua_State *L, int level, char *where, size_t size) {
    lua_Debug ar;
    where[0] = '\0';
    for (; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || is_runtime_source(ar.source)) continue;
        snprintf(where, size, "%s:%d", ar.short_src, ar.currentline);
        return;
    }
}

/* Pushes "file:line: <why the run was abandoned>" onto L. */
static void push_abort_error(lua_State *L, pl_vm *vm, const pl_budget *b) {
    if (b->where[0]) lua_pushfstring(L, "%s: ", b->where);
    else lua_pushliteral(L, "");
    push_over_message(L, vm, b);
    lua_concat(L, 2);
}

/* Leaves the run without handing control back to the script: yields the
 * run's own coroutine (pl_vm_resume then reports the abort and the caller
 * drops the coroutine). Where Lua cannot yield (a script's own coroutine, a
 * metamethod or callback called from C) it raises instead: no message
 * handler of the script runs (guard.c), and the armed hook raises again at
 * the first instruction of anything the script gets to run meanwhile.
 * The position is taken here: after a yield out of a hook, Lua's idea of
 * the current line is one instruction behind. */
static int leave_run(lua_State *L, pl_vm *vm, pl_budget *b, int in_hook) {
    if (!b->where[0] || L == b->root) script_position(L, in_hook ? 0 : 1, b->where, sizeof b->where);
    if (L == b->root && lua_isyieldable(L)) return lua_yield(L, 0);
    push_abort_error(L, vm, b);
    return lua_error(L);
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm->current;
    if (!b) return;
    int step = lua_gethookcount(L);
    if (!b->counting) {
        start_counting(vm, b, L);
        step = 0;
    }
    if (ar->event == LUA_HOOKCOUNT) b->used += step;
    if (within_budget(vm, b)) {
        /* a thread armed by an earlier run that was abandoned */
        if (step != HOOK_STEP) lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
        return;
    }
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    leave_run(L, vm, b, 1);
}

int pl_vm_charge(lua_State *L, long units) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm ? vm->current : NULL;
    if (!b) return 1;
    if (units > 0) b->used += units;
    return within_budget(vm, b);
}

int pl_vm_within_budget(pl_vm *vm) { return !vm->current || within_budget(vm, vm->current); }

int pl_vm_over(lua_State *L) {
    pl_vm *vm = pl_vm_from_lua(L);
    return vm && vm->current && vm->current->over != PL_OVER_NONE;
}

int pl_vm_abort_over(lua_State *L, pl_over why) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm ? vm->current : NULL;
    if (!b) return luaL_error(L, "%s budget exceeded outside a handler run", over_what(why));
    mark_over(vm, b, why);
    return leave_run(L, vm, b, 0);
}

int pl_vm_abort(lua_State *L) { return pl_vm_abort_over(L, PL_OVER_INSTRUCTIONS); }

lua_State *pl_vm_pause_watch(void) {
    lua_State *target = deadline_target;
    deadline_target = NULL;
    return target;
}

void pl_vm_resume_watch(lua_State *target) { deadline_target = target; }

void pl_vm_charge_elsewhere(lua_State *L, int64_t us) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm ? vm->current : NULL;
    if (!b || us <= 0) return;
    b->elsewhere_us += us;
    b->used += (long)(us * PL_WATCH_INSTRUCTIONS_PER_US);
    pl_usage_add(vm->usage, us);
    /* not checked here: the caller may be about to wait for I/O it just
     * started (the answer must find the turn); the run's next check (the
     * hook, a charge) ends it if it is over */
}

void pl_vm_set_running(pl_vm *vm, lua_State *L) {
    vm->running = L;
    deadline_target = vm->current ? L : NULL;
    /* a thread the script switches to is counted like the one it left */
    if (L && vm->current && vm->current->counting && lua_gethook(L) != budget_hook)
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
}
lua_State *pl_vm_running(const pl_vm *vm) { return vm->running; }

void pl_vm_count_from_start(pl_vm *vm) { lua_sethook(vm->L, budget_hook, LUA_MASKCOUNT, HOOK_STEP); }



/* The registry's set (weak keys) of the turns' coroutines. */
static const char turn_threads_key = 't';

static void push_turn_threads(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &turn_threads_key) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 8);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &turn_threads_key);
}

lua_State *pl_vm_new_thread(pl_vm *vm, int *ref) {
    if (vm->pooled > 0) {
        vm->pooled--;
        *ref = vm->pool_ref[vm->pooled];
        return vm->pool[vm->pooled];
    }
    lua_State *L = vm->L;
    lua_State *co = lua_newthread(L);
    push_turn_threads(L);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return co;
}

int pl_vm_is_turn_thread(lua_State *L, lua_State *co) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &turn_threads_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_checkstack(co, 1)) {
        lua_pop(L, 1);
        return 1; /* a full stack: not to be resumed anyway */
    }
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    int is = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return is;
}

void pl_vm_recycle_thread(pl_vm *vm, lua_State *co, int ref) {
    if (vm->pooled == THREAD_POOL || lua_status(co) != LUA_OK) {
        luaL_unref(vm->L, LUA_REGISTRYINDEX, ref);
        return;
    }
    lua_settop(co, 0);
    /* the hook a new thread would get from the main thread */
    if (vm->watched) lua_sethook(co, NULL, 0, 0);
    else lua_sethook(co, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
    vm->pool[vm->pooled] = co;
    vm->pool_ref[vm->pooled++] = ref;
}


pl_budget *pl_vm_current_budget(const pl_vm *vm) { return vm->current; }

int pl_vm_resume(pl_vm *vm, lua_State *co, int nargs, int *nres, pl_budget *budget) {
    pl_budget *outer = vm->current;
    lua_State *outer_running = vm->running;
    int outer_enforce = vm->mem_enforce;
    if (budget->time_used_us == 0) pl_usage_run(vm->usage);
    vm->current = budget;
    vm->mem_enforce = 1;
    vm->refused = 0;
    budget->root = co;
    budget->slice_start_wall_us = pl_monotonic_us();
    if (!vm->watched) budget->counting = 1;
    int watched = watch_thread();
    budget->thread_mark = &window_ticks;
    budget->slice_start_cpu_us = slice_start_cpu(budget->slice_start_wall_us);
    /* the window is the run's, not the slice's: a run that waits for I/O
     * again and again is counted once its slices add up to it; a run with
     * a small limit (a fallback's tenth) is counted from here, as is every
     * run where no timer would ever set the hook */
    if (!budget->counting && (!watched || budget->limit < PL_WATCH_FROM_LIMIT || !start_window(budget)))
        start_counting(vm, budget, co);
    pl_vm_set_running(vm, co);
    int status = lua_resume(co, vm->L, nargs, nres);
    pl_vm_set_running(vm, NULL);
    int64_t slice = pl_monotonic_us() - budget->slice_start_wall_us;
    budget->time_used_us += slice > 0 ? slice : 1;
    /* the bot's account: the time the run held its thread */
    pl_usage_add(vm->usage, slice);
    vm->current = outer;
    vm->mem_enforce = outer_enforce;
    pl_vm_set_running(vm, outer_running);
    if (status == LUA_ERRMEM) mark_over(vm, budget, PL_OVER_MEMORY);
    if (budget->over == PL_OVER_NONE) return status;
    pl_usage_abort(vm->usage, budget->over, budget->time_used_us);
    /* Abandoned: whatever the script did with the abort, the run failed.
     * A coroutine that yielded out of the hook keeps its stack, so the
     * error names the line it was at. */
    if (!budget->where[0]) script_position(co, 0, budget->where, sizeof budget->where);
    lua_checkstack(co, 1);
    push_abort_error(co, vm, budget);
    return LUA_ERRRUN;
}

static int has_position(const char *msg) {
    const char *colon = strstr(msg, ".lua:");
    if (!colon) return 0;
    const char *p = colon + 5;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    return *p == ':';
}

char *pl_vm_describe_error(pl_vm *vm, lua_State *co, int status, char **traceback) {
    const char *msg = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
    char *reason;
    if (status == LUA_ERRMEM)
        reason = pl_strdupf("memory budget of %zu MB exceeded", vm->mem_limit >> 20);
    else
        reason = pl_strdup(msg ? msg : "(error object is not a string)");
    char where[300] = "";
    lua_Debug ar;
    for (int level = 0; lua_getstack(co, level, &ar); level++) {
        if (!lua_getinfo(co, "Sl", &ar) || ar.currentline <= 0) continue;
        if (is_runtime_source(ar.source)) continue;
        snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
        break;
    }
    char *described =
        (has_position(reason) || !where[0]) ? pl_strdup(reason) : pl_strdupf("%s: %s", where, reason);
    if (traceback) {
        luaL_traceback(vm->L, co, NULL, 0);
        *traceback = pl_strdup(lua_tostring(vm->L, -1));
        lua_pop(vm->L, 1);
    }
    free(reason);
    return described;
}

