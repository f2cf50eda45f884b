/* retention: the daily purge of a bot's old conversations; see
 * retention.h. Owns the purges in progress, one per bot at most. */
#include "retention.h"

#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "base/common.h"
#include "base/log.h"

#define DAY_MS (24LL * 3600 * 1000)

/* What a purge does, in this order: first the analytics events of the old
 * turns are kept as day aggregates (ROLL_UP, a day a step: they live in
 * the transcript rows), then the kinds are removed. */
static const pl_store_purge_kind kinds[] = {PL_PURGE_TRANSCRIPT, PL_PURGE_INBOX, PL_PURGE_OUTBOX,
                                            PL_PURGE_CLOSED_HANDOFFS};
#define KINDS ((int)(sizeof kinds / sizeof *kinds))
#define ROLL_UP 0
#define FIRST_KIND 1
#define STEPS (FIRST_KIND + KINDS)

typedef struct purge_run {
    pl_retention *owner;
    struct purge_run *next;
    char *bot;
    char *time_zone;           /* the bot's, for the days of its analytics */
    int64_t quiet_ms;
    int days;
    int64_t before_ms;
    int step;                  /* ROLL_UP, then kinds[step - FIRST_KIND], then done */
    int64_t batch;             /* what the last batch rolled up or removed */
    pl_analytics_day *day;     /* ROLL_UP: the day read, for the write */
    int64_t removed[STEPS];
    char *err;
    struct event *again;       /* the next batch, once the loop served what waits */
} purge_run;

struct pl_retention {
    struct event_base *base;
    pl_store *store;
    pl_jobs *jobs;
    pl_retention_bot_fn find_bot;
    void *ud;
    purge_run *runs;
};

/* --- scheduling -------------------------------------------------------------- */

typedef struct {
    pl_retention *r;
    char *bot;
    int on;        /* retention_days set: schedule, else cancel */
    int scheduled; /* a job was put */
    char *err;
} watch;

static void write_watch(pl_store *store, void *ud) {
    watch *w = ud;
    if (!w->on) {
        pl_store_job_cancel(store, w->bot, PL_STORE_SYSTEM_CHANNEL, PL_RETENTION_USER, PL_RETENTION_JOB, NULL,
                            &w->err);
        return;
    }
    json_t *pending = NULL;
    if (pl_store_jobs_of(store, w->bot, PL_STORE_SYSTEM_CHANNEL, PL_RETENTION_USER, &pending, &w->err) != PL_OK) return;
    int64_t now = pl_now_ms();
    if (json_array_size(pending) == 0) {
        char *data = pl_strdupf("{\"every_ms\":%lld}", (long long)DAY_MS);
        w->scheduled = pl_store_job_put(store, w->bot, PL_STORE_SYSTEM_CHANNEL, PL_RETENTION_USER, PL_RETENTION_JOB,
                                        data, now, now, &w->err) == PL_OK;
        free(data);
    }
    json_decref(pending);
}

static void watched(void *ud) {
    watch *w = ud;
    if (w->err) pl_error("[%s] retention: its daily job could not be scheduled: %s", w->bot, w->err);
    if (w->scheduled) pl_jobs_kick(w->r->jobs);
    free(w->bot);
    free(w->err);
    free(w);
}

void pl_retention_watch(pl_retention *r, pl_bot *bot) {
    watch *w = calloc(1, sizeof *w);
    if (!w) abort();
    *w = (watch){.r = r, .bot = pl_strdup(pl_bot_name(bot)), .on = pl_bot_retention_days(bot) > 0};
    pl_store_offload(r->store, write_watch, watched, w);
}

/* --- a purge --------------------------------------------------------------------- */

static void purge_batch(pl_store *store, void *ud) {
    purge_run *run = ud;
    run->batch = 0;
    if (run->step == ROLL_UP) {
        /* the day read on the read thread is kept, in one transaction */
        pl_analytics_roll_up_write(store, run->day, &run->batch, &run->err);
        pl_analytics_day_free(run->day);
        run->day = NULL;
    } else {
        pl_store_purge_before(store, run->bot, kinds[run->step - FIRST_KIND], run->before_ms, PL_RETENTION_BATCH,
                              &run->batch, &run->err);
    }
}

/* A roll-up's long part, its reads: on the read thread, where neither the
 * loop nor the store's other calls wait for it. */
static void roll_up_read(pl_store *store, void *ud) {
    purge_run *run = ud;
    pl_analytics_roll_up_read(store, run->bot, run->time_zone, run->quiet_ms, run->before_ms, &run->day, &run->err);
}

static void run_free(purge_run *run) {
    pl_retention *r = run->owner;
    for (purge_run **p = &r->runs; *p; p = &(*p)->next)
        if (*p == run) {
            *p = run->next;
            break;
        }
    if (run->again) event_free(run->again);
    free(run->bot);
    pl_analytics_day_free(run->day);
    free(run->time_zone);
    free(run->err);
    free(run);
}

static void batch_done(void *ud);

static void roll_up_read_done(void *ud);

static void next_batch(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    purge_run *run = arg;
    if (run->step == ROLL_UP) pl_store_offload_read(run->owner->store, roll_up_read, roll_up_read_done, run);
    else pl_store_offload(run->owner->store, purge_batch, batch_done, run);
}

/* The day read (or nothing left before the cut, or a failure: batch_done
 * says) is written. */
static void roll_up_read_done(void *ud) {
    purge_run *run = ud;
    if (run->err || !run->day) {
        run->batch = 0;
        batch_done(run);
        return;
    }
    pl_store_offload(run->owner->store, purge_batch, batch_done, run);
}

static void batch_done(void *ud) {
    purge_run *run = ud;
    if (run->err) {
        pl_error("[%s] retention: %s; what is left is purged by the next day's run", run->bot, run->err);
        run_free(run);
        return;
    }
    run->removed[run->step] += run->batch;
    /* a day rolled up, or a full batch: there may be more of this kind */
    int more = run->step == ROLL_UP ? run->batch > 0 : run->batch >= PL_RETENTION_BATCH;
    if (!more) run->step++;
    if (run->step < STEPS) {
        /* after what else waits on the loop, never in one go */
        struct timeval now = {0, 0};
        evtimer_add(run->again, &now);
        return;
    }
    pl_info("[%s] retention (%d day%s): removed %lld transcript rows, %lld inbox messages, %lld sent calls; "
            "the analytics of %lld turns kept as day aggregates; %lld closed handoffs removed",
            run->bot, run->days, run->days == 1 ? "" : "s", (long long)run->removed[FIRST_KIND],
            (long long)run->removed[FIRST_KIND + 1], (long long)run->removed[FIRST_KIND + 2],
            (long long)run->removed[ROLL_UP], (long long)run->removed[FIRST_KIND + 3]);
    run_free(run);
}

typedef struct {
    char *bot;
    char *err;
} cancel;

static void write_cancel(pl_store *store, void *ud) {
    cancel *c = ud;
    pl_store_job_cancel(store, c->bot, PL_STORE_SYSTEM_CHANNEL, PL_RETENTION_USER, PL_RETENTION_JOB, NULL, &c->err);
}

static void cancelled(void *ud) {
    cancel *c = ud;
    if (c->err) pl_error("[%s] retention: %s", c->bot, c->err);
    free(c->bot);
    free(c->err);
    free(c);
}

/* The daily job fired (pl_jobs_on_system's fn): the job is already
 * scheduled for tomorrow. */
static void on_job(const json_t *job, void *ud) {
    pl_retention *r = ud;
    const char *name = json_string_value(json_object_get(job, "name"));
    const char *user = json_string_value(json_object_get(job, "user"));
    if (strcmp(name, PL_RETENTION_JOB) != 0 || strcmp(user, PL_RETENTION_USER) != 0) {
        pl_warn("jobs: parley has no job '%s' for '%s'; it is dropped", name, user);
        return;
    }
    const char *bot_name = json_string_value(json_object_get(job, "bot"));
    pl_bot *bot = r->find_bot(bot_name, r->ud);
    int days = bot ? pl_bot_retention_days(bot) : 0;
    if (days <= 0) {
        /* retention_days was taken out of bot.json: the job stops */
        cancel *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->bot = pl_strdup(bot_name);
        pl_store_offload(r->store, write_cancel, cancelled, c);
        return;
    }
    for (purge_run *run = r->runs; run; run = run->next)
        if (strcmp(run->bot, bot_name) == 0) {
            pl_warn("[%s] retention: yesterday's purge is still running; today's is skipped", bot_name);
            return;
        }
    purge_run *run = calloc(1, sizeof *run);
    if (!run) abort();
    *run = (purge_run){.owner = r, .next = r->runs, .bot = pl_strdup(bot_name), .days = days,
                       .before_ms = pl_now_ms() - days * DAY_MS, .time_zone = pl_strdup(pl_bot_time_zone(bot)),
                       .quiet_ms = pl_bot_quiet_ms(bot)};
    run->again = evtimer_new(r->base, next_batch, run);
    r->runs = run;
    next_batch(-1, 0, run);
}

pl_retention *pl_retention_new(struct event_base *base, pl_store *store, pl_jobs *jobs, pl_retention_bot_fn find_bot,
                               void *ud) {
    pl_retention *r = calloc(1, sizeof *r);
    if (!r) abort();
    *r = (pl_retention){.base = base, .store = store, .jobs = jobs, .find_bot = find_bot, .ud = ud};
    pl_jobs_on_system(jobs, on_job, r);
    return r;
}

void pl_retention_free(pl_retention *r) {
    if (!r) return;
    while (r->runs) run_free(r->runs);
    free(r);
}
