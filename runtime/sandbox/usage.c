/* usage: per-bot script time, budget aborts and the token bucket that
 * keeps a bot within its share of the loop; see usage.h. Owns the list of
 * every bot's account, to tell whether others want the loop too. */
#include "usage.h"

#include <pthread.h>
#include <stdlib.h>

#include "base/common.h"

struct pl_usage {
    struct pl_usage *next, *prev; /* every account of the process */
    int64_t script_us;
    uint64_t runs;
    uint64_t aborts[PL_OVER_MEMORY + 1];
    uint64_t refused, delayed;
    int64_t tokens_us;   /* may go below zero: the debt its runs left */
    int64_t refilled_at; /* monotonic µs of the last refill */
    int64_t last_run_at; /* monotonic µs when a run of this bot last started */
};

static pl_usage_policy policy = {PL_DEFAULT_SHARE, PL_DEFAULT_BURST_MS * 1000LL};
static pl_usage *accounts;
/* Turn threads (workers.h) charge their runs here too. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void pl_usage_set_policy(const pl_usage_policy *p) {
    policy = *p;
    if (policy.share <= 0 || policy.share > 1) policy.share = PL_DEFAULT_SHARE;
    if (policy.burst_us <= 0) policy.burst_us = PL_DEFAULT_BURST_MS * 1000LL;
}

void pl_usage_get_policy(pl_usage_policy *p) { *p = policy; }

pl_usage *pl_usage_new(void) {
    pl_usage *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->tokens_us = policy.burst_us;
    u->refilled_at = pl_monotonic_us();
    pthread_mutex_lock(&lock);
    u->next = accounts;
    if (accounts) accounts->prev = u;
    accounts = u;
    pthread_mutex_unlock(&lock);
    return u;
}

void pl_usage_free(pl_usage *u) {
    if (!u) return;
    pthread_mutex_lock(&lock);
    if (u->prev) u->prev->next = u->next;
    else accounts = u->next;
    if (u->next) u->next->prev = u->prev;
    pthread_mutex_unlock(&lock);
    free(u);
}

static void refill(pl_usage *u) {
    int64_t now = pl_monotonic_us();
    int64_t earned = (int64_t)((double)(now - u->refilled_at) * policy.share);
    u->refilled_at = now;
    u->tokens_us += earned;
    if (u->tokens_us > policy.burst_us) u->tokens_us = policy.burst_us;
}

/* Whether a bot other than u ran within the last PL_CONTENTION_MS. */
static int others_want_the_loop(const pl_usage *u) {
    int64_t since = pl_monotonic_us() - PL_CONTENTION_MS * 1000LL;
    for (const pl_usage *o = accounts; o; o = o->next)
        if (o != u && o->last_run_at > since) return 1;
    return 0;
}

void pl_usage_run(pl_usage *u) {
    if (!u) return;
    pthread_mutex_lock(&lock);
    u->runs++;
    u->last_run_at = pl_monotonic_us();
    pthread_mutex_unlock(&lock);
}

void pl_usage_add(pl_usage *u, int64_t us) {
    if (!u || us <= 0) return;
    pthread_mutex_lock(&lock);
    refill(u);
    u->script_us += us;
    u->tokens_us -= us;
    pthread_mutex_unlock(&lock);
}

void pl_usage_abort(pl_usage *u, pl_over why, int64_t run_us) {
    if (!u || why <= PL_OVER_NONE || why > PL_OVER_MEMORY) return;
    pthread_mutex_lock(&lock);
    u->aborts[why]++;
    refill(u);
    u->tokens_us -= run_us * PL_ABORT_PENALTY;
    pthread_mutex_unlock(&lock);
}

void pl_usage_held(pl_usage *u, int refused) {
    if (!u) return;
    pthread_mutex_lock(&lock);
    if (refused) u->refused++;
    else u->delayed++;
    pthread_mutex_unlock(&lock);
}

static int64_t wait_ms(pl_usage *u) {
    refill(u);
    if (u->tokens_us >= 0) return 0;
    /* alone, a bot may use the whole loop, and carries no debt into the
     * moment another bot comes */
    if (!others_want_the_loop(u)) {
        u->tokens_us = 0;
        return 0;
    }
    return (int64_t)((double)-u->tokens_us / policy.share / 1000.0) + 1;
}

int64_t pl_usage_wait_ms(pl_usage *u) {
    if (!u) return 0;
    pthread_mutex_lock(&lock);
    int64_t wait = wait_ms(u);
    pthread_mutex_unlock(&lock);
    return wait;
}

json_t *pl_usage_json(pl_usage *u) {
    pthread_mutex_lock(&lock);
    int64_t wait = wait_ms(u);
    json_t *j = json_pack("{s:I, s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:b}", "script_ms",
                     (json_int_t)(u->script_us / 1000), "runs", (json_int_t)u->runs, "aborts",
                     "instructions", (json_int_t)u->aborts[PL_OVER_INSTRUCTIONS], "time",
                     (json_int_t)u->aborts[PL_OVER_TIME], "memory", (json_int_t)u->aborts[PL_OVER_MEMORY],
                     "refused", (json_int_t)u->refused, "delayed", (json_int_t)u->delayed, "throttled",
                     wait > 0);
    pthread_mutex_unlock(&lock);
    return j;
}
