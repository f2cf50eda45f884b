/* jobs: the scheduler of durable timers; see jobs.h. */
#include "jobs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"

/* Even with nothing due, look again this often (a job scheduled by another
 * process, a clock that jumped). */
#define RECHECK_MS 60000
#define BATCH 200

struct pl_jobs {
    struct event_base *base;
    pl_store *store;
    pl_pipeline *pipe;
    pl_jobs_bot_fn find_bot;
    void *ud;
    struct event *timer;
    int firing; /* batches recorded but not yet committed */
    int stalled; /* due jobs of bots not served here: do not spin on them */
    int64_t recheck_ms; /* pl_jobs_share's: other nodes schedule jobs too */
    int looking;    /* the store's thread reads the jobs for us */
    int look_again; /* and was kicked meanwhile */
    pl_jobs_system_fn system; /* pl_jobs_on_system's */
    void *system_ud;
};

typedef struct {
    pl_jobs *jobs;
    json_t *due; /* this bot's due jobs */
    int fired;   /* of them, how many the last write marked fired */
} firing;

/* parley_jobs_fired_total, by bot (the pending ones are counted in the
 * store when /metrics asks: pl_store_read_figures). */
static pl_metric *fired_metric;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    fired_metric = pl_metric_counter("parley_jobs_fired_total", "Durable timers that fired (each once)", "bot");
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

/* The store's answers, read on its thread (pl_store_offload) and acted on
 * on the loop: the due jobs (when the timer fired), then when the next one
 * is due. One look at a time; a kick meanwhile looks again after it. */
typedef struct {
    pl_jobs *jobs;
    int due_too;
    json_t *due;
    int64_t next;
    char *err;
} look;

static void fire_due(pl_jobs *j, json_t *due);

static void read_jobs(pl_store *store, void *ud) {
    look *l = ud;
    l->next = -1;
    if (l->due_too && pl_store_jobs_due(store, pl_now_ms(), BATCH, &l->due, &l->err) != PL_OK) return;
    if (pl_store_job_next(store, &l->next, &l->err) != PL_OK) l->next = -1;
}

/* Sets the timer for the next due job (next: its time, -1 none). */
static void set_timer(pl_jobs *j, int64_t next) {
    int64_t recheck = j->recheck_ms ? j->recheck_ms : RECHECK_MS;
    int64_t delay = next < 0 ? recheck : next - pl_now_ms();
    if (delay < 0) delay = 0;
    if (j->stalled && delay < 5000) delay = 5000;
    if (delay > recheck) delay = recheck;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    evtimer_add(j->timer, &tv);
}

static void jobs_read(void *ud) {
    look *l = ud;
    pl_jobs *j = l->jobs;
    j->looking = 0;
    if (l->err) {
        pl_error("jobs: %s", l->err);
        free(l->err);
    }
    if (json_array_size(l->due) > 0) fire_due(j, l->due);
    json_decref(l->due);
    int again = j->look_again;
    j->look_again = 0;
    if (j->firing || again) pl_jobs_kick(j); /* a commit in flight kicks again */
    else set_timer(j, l->next);
    free(l);
}

static void look_for_jobs(pl_jobs *j, int due_too) {
    if (j->looking) {
        j->look_again = 1;
        return;
    }
    look *l = calloc(1, sizeof *l);
    if (!l) abort();
    *l = (look){.jobs = j, .due_too = due_too};
    j->looking = 1;
    pl_store_offload(j->store, read_jobs, jobs_read, l);
}

void pl_jobs_kick(pl_jobs *j) {
    if (j->firing) return; /* the commit in flight kicks again */
    look_for_jobs(j, 0);
}

/* Inside the commit: each due job still pending becomes an event. */
static int write_fired(pl_store *store, void *ud, json_t *events, char **err) {
    firing *f = ud;
    size_t i;
    json_t *job;
    f->fired = 0;
    json_array_foreach(f->due, i, job) {
        int changed = 0;
        if (pl_store_job_fired(store, json_integer_value(json_object_get(job, "id")), pl_now_ms(), &changed,
                               err) != PL_OK)
            return PL_ERR;
        if (!changed) continue;
        f->fired++;
        json_t *event = json_pack("{s:s, s:O, s:O, s:O, s:O}", "type", "job", "name", json_object_get(job, "name"),
                                  "data", json_object_get(job, "data"), "id", json_object_get(job, "id"),
                                  "due_at", json_object_get(job, "fire_at"));
        char *id = pl_strdupf("job:%lld", (long long)json_integer_value(json_object_get(job, "id")));
        json_array_append_new(events, json_pack("{s:s, s:s, s:O, s:O, s:o}", "kind", "message", "id", id, "user",
                                                json_object_get(job, "user"), "channel",
                                                json_object_get(job, "channel"), "event", event));
        free(id);
    }
    return PL_OK;
}

static void fired(int status, void *ud) {
    firing *f = ud;
    pl_jobs *j = f->jobs;
    if (status != 200) pl_error("jobs: %zu due job(s) could not be fired; retrying", json_array_size(f->due));
    else if (f->fired)
        pl_metric_add(fired_metric, (const char *[]){json_string_value(json_object_get(json_array_get(f->due, 0), "bot"))},
                      f->fired);
    json_decref(f->due);
    free(f);
    if (--j->firing == 0) pl_jobs_kick(j);
}

/* --- parley's own jobs ------------------------------------------------------ */

typedef struct {
    pl_jobs *jobs;
    json_t *job;
    int changed; /* it was pending, and is fired now */
    char *err;
} system_firing;

/* On the store's thread: fired, and the next one scheduled, together. */
static void write_system_fired(pl_store *store, void *ud) {
    system_firing *f = ud;
    const json_t *job = f->job;
    int64_t now = pl_now_ms();
    json_t *data = json_object_get(job, "data");
    int64_t every = json_integer_value(json_object_get(data, "every_ms"));
    if (pl_store_begin(store, &f->err) != PL_OK) return;
    int rc = pl_store_job_fired(store, json_integer_value(json_object_get(job, "id")), now, &f->changed, &f->err);
    if (rc == PL_OK && f->changed && every > 0) {
        char *text = json_dumps(data, JSON_COMPACT);
        rc = pl_store_job_put(store, json_string_value(json_object_get(job, "bot")),
                              json_string_value(json_object_get(job, "channel")),
                              json_string_value(json_object_get(job, "user")),
                              json_string_value(json_object_get(job, "name")), text, now + every, now, &f->err);
        free(text);
    }
    if (rc == PL_OK) rc = pl_store_commit(store, &f->err);
    if (rc != PL_OK) {
        pl_store_rollback(store);
        f->changed = 0;
    }
}

static void system_fired(void *ud) {
    system_firing *f = ud;
    pl_jobs *j = f->jobs;
    if (f->err)
        pl_error("jobs: parley's job '%s' of bot %s could not be fired (%s); retrying",
                 json_string_value(json_object_get(f->job, "name")), json_string_value(json_object_get(f->job, "bot")),
                 f->err);
    else if (f->changed && j->system)
        j->system(f->job, j->system_ud);
    json_decref(f->job);
    free(f->err);
    free(f);
    if (--j->firing == 0) pl_jobs_kick(j);
}

static void fire_system(pl_jobs *j, json_t *job) {
    system_firing *f = calloc(1, sizeof *f);
    if (!f) abort();
    *f = (system_firing){.jobs = j, .job = json_incref(job)};
    j->firing++;
    pl_store_offload(j->store, write_system_fired, system_fired, f);
}

void pl_jobs_on_system(pl_jobs *j, pl_jobs_system_fn fn, void *ud) {
    j->system = fn;
    j->system_ud = ud;
}

/* Groups the due jobs by bot: one record (one commit item) per bot; the
 * system's are fired one by one, never as a session's event. */
static void fire_due(pl_jobs *j, json_t *due) {
    json_t *by_bot = json_object();
    j->stalled = 0;
    size_t i;
    json_t *job;
    json_array_foreach(due, i, job) {
        const char *bot = json_string_value(json_object_get(job, "bot"));
        if (PL_STORE_IS_SYSTEM_CHANNEL(json_string_value(json_object_get(job, "channel")))) {
            if (j->find_bot(bot, j->ud)) fire_system(j, job);
            else j->stalled = 1; /* not served here: it waits */
            continue;
        }
        json_t *list = json_object_get(by_bot, bot);
        if (!list) json_object_set_new(by_bot, bot, list = json_array());
        json_array_append(list, job);
    }
    const char *bot_name;
    json_t *list;
    json_object_foreach(by_bot, bot_name, list) {
        pl_bot *bot = j->find_bot(bot_name, j->ud);
        if (!bot) {
            j->stalled = 1; /* not served here: its jobs wait */
            continue;
        }
        firing *f = calloc(1, sizeof *f);
        if (!f) abort();
        *f = (firing){j, json_incref(list), 0};
        j->firing++;
        pl_pipeline_record_with(j->pipe, bot, write_fired, f, fired, f);
    }
    json_decref(by_bot);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    look_for_jobs(arg, 1);
}

pl_jobs *pl_jobs_new(struct event_base *base, pl_store *store, pl_pipeline *pipe,
                     pl_jobs_bot_fn find_bot, void *ud) {
    pthread_once(&metrics_once, make_metrics);
    pl_jobs *j = calloc(1, sizeof *j);
    if (!j) abort();
    *j = (pl_jobs){.base = base, .store = store, .pipe = pipe, .find_bot = find_bot, .ud = ud};
    j->timer = evtimer_new(base, on_timer, j);
    pl_jobs_kick(j);
    return j;
}

void pl_jobs_share(pl_jobs *j, int64_t lease_ms) {
    j->recheck_ms = lease_ms;
    pl_jobs_kick(j);
}

void pl_jobs_free(pl_jobs *j) {
    if (!j) return;
    event_free(j->timer);
    free(j);
}
