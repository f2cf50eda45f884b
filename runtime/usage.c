/* usage: per-bot script time, budget aborts and the token bucket that
 * keeps a bot within its share of the loop; see usage.h. */
#include "usage.h"

#include <stdlib.h>

#include "common.h"

struct pl_usage {
    int64_t script_us;
    uint64_t runs;
    uint64_t aborts[PL_OVER_MEMORY + 1];
    uint64_t refused, delayed;
    int64_t tokens_us;   /* may go below zero: the debt a run left */
    int64_t refilled_at; /* monotonic µs of the last refill */
};

static pl_usage_policy policy = {PL_DEFAULT_SHARE, PL_DEFAULT_BURST_MS * 1000LL};

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
    return u;
}

void pl_usage_free(pl_usage *u) { free(u); }

static void refill(pl_usage *u) {
    int64_t now = pl_monotonic_us();
    int64_t earned = (int64_t)((double)(now - u->refilled_at) * policy.share);
    u->refilled_at = now;
    u->tokens_us += earned;
    if (u->tokens_us > policy.burst_us) u->tokens_us = policy.burst_us;
}

void pl_usage_run(pl_usage *u) {
    if (u) u->runs++;
}

void pl_usage_add(pl_usage *u, int64_t us) {
    if (!u || us <= 0) return;
    refill(u);
    u->script_us += us;
    u->tokens_us -= us;
}

void pl_usage_abort(pl_usage *u, pl_over why, int64_t run_us) {
    if (!u || why <= PL_OVER_NONE || why > PL_OVER_MEMORY) return;
    u->aborts[why]++;
    refill(u);
    u->tokens_us -= run_us * PL_ABORT_PENALTY;
}

void pl_usage_held(pl_usage *u, int refused) {
    if (!u) return;
    if (refused) u->refused++;
    else u->delayed++;
}

int64_t pl_usage_wait_ms(pl_usage *u) {
    if (!u) return 0;
    refill(u);
    if (u->tokens_us >= 0) return 0;
    return (int64_t)((double)-u->tokens_us / policy.share / 1000.0) + 1;
}

json_t *pl_usage_json(pl_usage *u) {
    int64_t wait = pl_usage_wait_ms(u);
    return json_pack("{s:I, s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:b}", "script_ms",
                     (json_int_t)(u->script_us / 1000), "runs", (json_int_t)u->runs, "aborts",
                     "instructions", (json_int_t)u->aborts[PL_OVER_INSTRUCTIONS], "time",
                     (json_int_t)u->aborts[PL_OVER_TIME], "memory", (json_int_t)u->aborts[PL_OVER_MEMORY],
                     "refused", (json_int_t)u->refused, "delayed", (json_int_t)u->delayed, "throttled",
                     wait > 0);
}
