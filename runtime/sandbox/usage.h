/* usage: what one bot's scripts cost the host — the time its handler runs
 * held the event loop, how many runs were abandoned over which budget, and
 * how often its messages were held back — and the share of the loop it may
 * take (DESIGN.md section 4: a greedy bot slows only itself).
 *
 * The share is a token bucket of script CPU time: it refills at `share` of
 * real time up to `burst`, every run takes the CPU time it used, and while
 * the bucket is empty the bot waits (pl_usage_wait_ms) — but only while
 * another bot wants the loop too: alone, a bot may use all of it. The
 * pipeline holds such a bot's messages back (refusing them on channels
 * that wait for the answer), so another bot's shoppers never queue behind
 * it. The clocks are the thread's CPU clock and the monotonic one: moving
 * parley's test clock changes nothing here. */
#ifndef PL_USAGE_H
#define PL_USAGE_H

#include <jansson.h>
#include <stdint.h>


typedef struct pl_usage pl_usage;

/* Why a run was abandoned. */
typedef enum {
    PL_OVER_NONE = 0,
    PL_OVER_INSTRUCTIONS,
    PL_OVER_TIME,
    PL_OVER_MEMORY,
} pl_over;

/* The host's policy, set by the operator (parley serve). */
typedef struct {
    double share;     /* fraction of one core's time a bot may keep using (0-1] */
    int64_t burst_us; /* script time a bot may use at once before the share applies */
} pl_usage_policy;

#define PL_DEFAULT_SHARE 0.5
#define PL_DEFAULT_BURST_MS 250

void pl_usage_set_policy(const pl_usage_policy *policy);
void pl_usage_get_policy(pl_usage_policy *policy);

pl_usage *pl_usage_new(void);
void pl_usage_free(pl_usage *usage);

/* A handler run starts. */
void pl_usage_run(pl_usage *usage);
/* Another bot that ran within this many milliseconds wants the loop too. */
#define PL_CONTENTION_MS 1000

/* A slice of a run took `us` microseconds of CPU. */
void pl_usage_add(pl_usage *usage, int64_t us);
/* A run that took run_us (of the loop's time) was abandoned over a budget. Besides its time, it
 * costs the bot PL_ABORT_PENALTY times that much of its share: a bot whose
 * runs keep running out is held back long before it could take its whole
 * share from the others, while a bot that is only busy is not. */
void pl_usage_abort(pl_usage *usage, pl_over why, int64_t run_us);
#define PL_ABORT_PENALTY 8
/* A message was held back (refused: 1, or delayed: 0) because of the share. */
void pl_usage_held(pl_usage *usage, int refused);

/* Milliseconds until the bot may run again; 0 when it may run now. */
int64_t pl_usage_wait_ms(pl_usage *usage);

/* {"script_ms", "runs", "aborts": {"instructions", "time", "memory"},
 *  "refused", "delayed", "throttled"} for /v1/health (new). */
json_t *pl_usage_json(pl_usage *usage);

#endif
