/* test_pipeline: messages through the whole path (pipeline.h, app.h) on the
 * default barista bot, copied to a temporary folder: once with an in-memory
 * SQLite store, once on a fresh PostgreSQL database a case (the run's
 * private server, PARLEY_TEST_PG), but for what only SQLite has (its sync
 * thread, a file lock another process holds). Run from the repository root
 * (as `make test` does). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "app/app.h"
#include "base/common.h"
#include "base/log.h"
#include "check.h"
#include "pg_loop.h"
#include "store/syncer.h"

static char bot_dir[64];
static int errors_logged;

static void count_errors(pl_log_level level, const char *line, void *ud) {
    (void)ud;
    if (level >= PL_LOG_ERROR) {
        errors_logged++;
        printf("#   logged: %s\n", line);
    }
}

static int copy_bot(void) {
    if (access("bot.json", R_OK) != 0) {
        printf("#   run from the repository root (no bot.json here)\n");
        return 0;
    }
    strcpy(bot_dir, "/tmp/parley-test-pipeline-XXXXXX");
    if (!mkdtemp(bot_dir)) return 0;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cp -R bot.json catalog.json flows scripts %s/", bot_dir);
    return system(cmd) == 0;
}

static void remove_tree(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("#   could not remove %s\n", dir);
}

static void remove_bot(void) {
    if (bot_dir[0]) remove_tree(bot_dir);
}

static pl_app *open_app_with(const char *db_path, pl_store_sync sync, size_t threads) {
    char *dirs[] = {bot_dir};
    pl_app_config config = {.db_path = db_path, .sync = sync, .bot_dirs = dirs, .nbots = 1, .threads = threads};
    pl_app *app = NULL;
    char *err = NULL;
    if (pl_app_open(&config, &app, &err) != 0) {
        printf("#   pl_app_open: %s\n", err);
        free(err);
        return NULL;
    }
    return app;
}

/* The backend the shared cases run on: 0 SQLite in memory, 1 PostgreSQL. */
static int on_postgres;

/* An app on an empty store of the run's backend, with threads at work. */
static pl_app *open_app_threads(size_t threads) {
    if (!on_postgres) return open_app_with(":memory:", PL_SYNC_NORMAL, threads);
    static int made;
    char name[64];
    snprintf(name, sizeof name, "parley_test_pipeline_%d", ++made);
    char *url = fresh_database_url_named(name);
    CHECK(url != NULL);
    pl_app *app = url ? open_app_with(url, PL_SYNC_NORMAL, threads) : NULL;
    free(url);
    return app;
}

static pl_app *open_app(void) { return open_app_threads(1); }

/* What each deliver callback saw. */
typedef struct {
    int calls;
    int status;
    char user[32];
    char text[64];
    size_t nreplies;
    int fallback;
    int order; /* position among all deliveries */
    char replies[512]; /* the replies as compact JSON (cut) */
} delivery;

static int deliveries;
static const char *fallback_text;

static void on_deliver(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    const json_t *replies = pl_turn_replies(result);
    delivery *d = ud;
    d->calls++;
    d->status = status;
    snprintf(d->user, sizeof d->user, "%s", msg->user);
    snprintf(d->text, sizeof d->text, "%s", msg->text ? msg->text : "");
    d->nreplies = json_array_size(replies);
    const char *first = json_string_value(json_object_get(json_array_get(replies, 0), "text"));
    d->fallback = first && fallback_text && strcmp(first, fallback_text) == 0;
    d->order = deliveries++;
    char *dump = json_dumps(replies, JSON_COMPACT);
    snprintf(d->replies, sizeof d->replies, "%s", dump ? dump : "");
    free(dump);
}

static void post(pl_app *app, const char *user, const char *text, delivery *d) {
    pl_bot *bot = pl_app_bot(app, 0);
    pl_message *msg = pl_message_new(pl_bot_name(bot), "rest", user);
    msg->text = strdup(text);
    pl_pipeline_post(pl_app_pipeline(app), bot, msg, on_deliver, d);
}

static char *stored_session(pl_app *app, const char *user) {
    pl_session_key key = {"barista", "rest", user};
    char *state = NULL, *err = NULL;
    if (pl_store_session_get(pl_app_store(app), &key, &state, &err) != 0) {
        printf("#   session_get: %s\n", err);
        free(err);
    }
    return state;
}

TEST(app_opens_default_bot) {
    pl_app *app = open_app();
    CHECK(app != NULL);
    if (!app) return;
    CHECK(pl_app_bot_count(app) == 1);
    pl_bot *bot = pl_app_find_bot(app, "barista");
    CHECK(bot != NULL && bot == pl_app_bot(app, 0));
    CHECK(bot && pl_bot_vm(bot) != NULL);
    CHECK(bot && pl_bot_error(bot) == NULL);
    CHECK(pl_store_catalog_count(pl_app_store(app), "barista") > 0);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == 0);
    pl_app_close(app);
}

TEST(one_user_in_order) {
    pl_app *app = open_app();
    if (!app) return;
    fallback_text = pl_bot_static_fallback(pl_app_bot(app, 0), "en");
    deliveries = 0;
    errors_logged = 0;
    const char *texts[] = {"hi", "a large latte please", "yes", "no thanks", "that's all"};
    enum { N = 5 };
    delivery d[N];
    memset(d, 0, sizeof d);
    for (int i = 0; i < N; i++) post(app, "alice", texts[i], &d[i]);
    /* nothing is delivered before the loop runs the commit */
    for (int i = 0; i < N; i++) CHECK(d[i].calls == 0);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == N);
    pl_app_drain(app);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == 0);
    for (int i = 0; i < N; i++) {
        CHECK(d[i].calls == 1);
        CHECK(d[i].status == 200);
        CHECK(d[i].order == i);
        CHECK_STR(d[i].text, texts[i]);
        CHECK(d[i].nreplies > 0);
        CHECK(!d[i].fallback);
    }
    CHECK(errors_logged == 0);
    /* the order reached the flow: the latte was found in the catalog */
    CHECK(strstr(d[1].replies, "Latte") != NULL);
    char *state = stored_session(app, "alice");
    CHECK(state != NULL);
    json_t *j = state ? json_loads(state, 0, NULL) : NULL;
    CHECK(json_is_object(j));
    json_decref(j);
    free(state);
    /* the transcript holds every message in and at least one reply each */
    pl_session_key key = {"barista", "rest", "alice"};
    json_t *lines = NULL;
    char *err = NULL;
    CHECK(pl_store_transcript_get(pl_app_store(app), &key, 1000, &lines, &err) == 0);
    size_t in = 0, out = 0, i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        const char *dir = json_string_value(json_object_get(line, "direction"));
        if (dir && strcmp(dir, "in") == 0) {
            if (in < N)
                CHECK_STR(json_string_value(json_object_get(json_object_get(line, "body"), "text")), texts[in]);
            in++;
        } else {
            out++;
        }
    }
    CHECK(in == N);
    CHECK(out >= N);
    json_decref(lines);
    free(err);
    pl_app_close(app);
}

/* The transcript line of a message that came in is what json_dumps wrote
 * of {"text", "payload", "locale", "event", "info"} (those present), a
 * string that is not UTF-8 left out: the pipeline writes it without a tree. */
TEST(transcript_lines_in_as_jansson_wrote_them) {
    pl_app *app = open_app();
    if (!app) return;
    pl_bot *bot = pl_app_bot(app, 0);
    fallback_text = pl_bot_static_fallback(bot, "en");
    static const char *const texts[] = {"hi", "say \"hi\"\n\t\x01 \\ / \xe2\x82\xac \xe2\x98\x95", "caf\xc3", "a latte"};
    enum { N = 4 };
    delivery d[N];
    memset(d, 0, sizeof d);
    json_t *want[N];
    for (int i = 0; i < N; i++) {
        pl_message *msg = pl_message_new(pl_bot_name(bot), "rest", "transcribed");
        want[i] = json_object();
        if (texts[i]) {
            msg->text = strdup(texts[i]);
            json_t *text = json_string(texts[i]); /* NULL for the one that is not UTF-8 */
            if (text) json_object_set_new(want[i], "text", text);
        }
        if (i == 3) {
            msg->payload = strdup("latte");
            json_object_set_new(want[i], "payload", json_string("latte"));
            msg->locale = strdup("ja");
            json_object_set_new(want[i], "locale", json_string("ja"));
            msg->channel_info = json_pack("{s:s, s:[i, f, n]}", "name", "\"x\"", "list", 1, 2.5);
            json_object_set(want[i], "info", msg->channel_info);
        }
        pl_pipeline_post(pl_app_pipeline(app), bot, msg, on_deliver, &d[i]);
    }
    pl_app_drain(app);
    pl_session_key key = {"barista", "rest", "transcribed"};
    json_t *lines = NULL;
    char *err = NULL;
    CHECK(pl_store_transcript_get(pl_app_store(app), &key, 1000, &lines, &err) == 0);
    size_t in = 0, i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        const char *dir = json_string_value(json_object_get(line, "direction"));
        if (!dir || strcmp(dir, "in") != 0 || in >= N) continue;
        /* compact text of what was stored (read back in order) against
         * the tree's */
        char *got = json_dumps(json_object_get(line, "body"), JSON_COMPACT);
        char *expected = json_dumps(want[in], JSON_COMPACT);
        CHECK_STR(got, expected);
        free(got);
        free(expected);
        in++;
    }
    CHECK(in == N);
    for (int k = 0; k < N; k++) {
        CHECK(d[k].status == 200 && !d[k].fallback);
        json_decref(want[k]);
    }
    json_decref(lines);
    free(err);
    pl_app_close(app);
}

TEST(many_users_each_in_order) {
    pl_app *app = open_app();
    if (!app) return;
    fallback_text = pl_bot_static_fallback(pl_app_bot(app, 0), "en");
    deliveries = 0;
    errors_logged = 0;
    enum { USERS = 6, ROUNDS = 4 };
    const char *users[USERS] = {"u1", "u2", "u3", "u4", "u5", "u6"};
    const char *texts[ROUNDS] = {"hello", "a latte please", "large", "no"};
    delivery d[USERS][ROUNDS];
    memset(d, 0, sizeof d);
    /* interleaved: round by round across users */
    for (int r = 0; r < ROUNDS; r++)
        for (int u = 0; u < USERS; u++) post(app, users[u], texts[r], &d[u][r]);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == USERS * ROUNDS);
    pl_app_drain(app);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == 0);
    CHECK(deliveries == USERS * ROUNDS);
    for (int u = 0; u < USERS; u++) {
        for (int r = 0; r < ROUNDS; r++) {
            CHECK(d[u][r].calls == 1);
            CHECK(d[u][r].status == 200);
            CHECK_STR(d[u][r].user, users[u]);
            CHECK_STR(d[u][r].text, texts[r]);
            CHECK(d[u][r].nreplies > 0);
            CHECK(!d[u][r].fallback);
            if (r > 0) CHECK(d[u][r].order > d[u][r - 1].order);
        }
        char *state = stored_session(app, users[u]);
        CHECK(state != NULL);
        free(state);
    }
    CHECK(pl_store_session_count(pl_app_store(app)) == USERS);
    CHECK(errors_logged == 0);
    pl_app_close(app);
}

/* USERS shoppers, ROUNDS messages each, posted round by round; every
 * delivery 200, each shopper's in order, a session stored for each. */
static void interleaved_users(pl_app *app) {
    fallback_text = pl_bot_static_fallback(pl_app_bot(app, 0), "en");
    deliveries = 0;
    errors_logged = 0;
    enum { USERS = 12, ROUNDS = 4 };
    const char *texts[ROUNDS] = {"hello", "a latte please", "large", "no"};
    char users[USERS][16];
    delivery d[USERS][ROUNDS];
    memset(d, 0, sizeof d);
    for (int u = 0; u < USERS; u++) snprintf(users[u], sizeof users[u], "t%d", u);
    for (int r = 0; r < ROUNDS; r++)
        for (int u = 0; u < USERS; u++) post(app, users[u], texts[r], &d[u][r]);
    pl_app_drain(app);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == 0);
    CHECK(deliveries == USERS * ROUNDS);
    for (int u = 0; u < USERS; u++) {
        for (int r = 0; r < ROUNDS; r++) {
            CHECK(d[u][r].calls == 1 && d[u][r].status == 200);
            CHECK_STR(d[u][r].user, users[u]);
            CHECK_STR(d[u][r].text, texts[r]);
            CHECK(d[u][r].nreplies > 0 && !d[u][r].fallback);
            if (r > 0) CHECK(d[u][r].order > d[u][r - 1].order);
        }
        /* the latte reached the flow on whichever thread the shopper has */
        CHECK(strstr(d[u][1].replies, "Latte") != NULL);
        char *state = stored_session(app, users[u]);
        CHECK(state != NULL);
        free(state);
    }
    CHECK(errors_logged == 0);
}

/* Makes the folder dir (a mkdtemp template) and names path/p.db in it;
 * returns 0 when the folder cannot be made. */
static int temp_db(char *dir, char *path, size_t size) {
    if (!mkdtemp(dir)) return 0;
    snprintf(path, size, "%s/p.db", dir);
    return 1;
}

/* A database file with --sync full: the loop hands every commit to the
 * sync thread and delivers after its fdatasync. */
TEST(sync_thread_makes_commits_durable_before_delivery) {
    char dir[] = "/tmp/parley-test-sync-XXXXXX";
    char path[96];
    if (!temp_db(dir, path, sizeof path)) return;
    pl_app *app = open_app_with(path, PL_SYNC_FULL, 1);
    CHECK(app != NULL);
    if (app) {
        interleaved_users(app);
        uint64_t syncs = 0, checkpoints = 0, items = 0, transactions = 0;
        pl_pipeline_sync_stats(pl_app_pipeline(app), &syncs, &checkpoints);
        pl_pipeline_stats(pl_app_pipeline(app), &items, &transactions);
        CHECK(syncs >= 1);
        /* group commit: a sync per batch at most, never per message */
        CHECK(syncs <= transactions + 1);
        CHECK(items == 12 * 4);
        pl_app_close(app);
    }
    /* closed: the database file holds it all, whoever opens it next */
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(path, PL_SYNC_FULL, &store, &err) == 0);
    if (store) CHECK(pl_store_session_count(store) == 12);
    pl_store_close(store);
    free(err);
    remove_tree(dir);
}

/* With --sync full, once the WAL passes PL_SYNCER_CHECKPOINT_BYTES the
 * loop holds one write for the sync thread's checkpoint, which copies the
 * WAL whole, so the next write starts the WAL over: a few checkpoints for
 * many syncs (a checkpoint after every sync while the loop wrote had
 * copied only the last commits each time, with two more syncs each, and
 * the WAL never started over). */
TEST(wal_starts_over_after_a_held_checkpoint) {
    if (on_postgres) return;
    char dir[] = "/tmp/parley-test-wal-XXXXXX";
    char path[96];
    if (!temp_db(dir, path, sizeof path)) return;
    pl_app *app = open_app_with(path, PL_SYNC_FULL, 1);
    CHECK(app != NULL);
    if (app) {
        fallback_text = pl_bot_static_fallback(pl_app_bot(app, 0), "en");
        enum { ROUND = 40, ROUNDS = 40 };
        static delivery d[ROUND * ROUNDS];
        memset(d, 0, sizeof d);
        deliveries = 0;
        uint64_t syncs = 0, checkpoints = 0, most_frames = 0;
        char user[32];
        int posted = 0;
        /* distinct shoppers, a round at a time: each a session and a
         * transcript row in pages of their own */
        for (int r = 0; r < ROUNDS && checkpoints < 2; r++) {
            for (int i = 0; i < ROUND; i++) {
                snprintf(user, sizeof user, "w%d-%d", r, i);
                post(app, user, "hello", &d[posted++]);
            }
            pl_app_drain(app);
            uint64_t frames = pl_store_wal_frames(pl_app_store(app));
            if (frames > most_frames) most_frames = frames;
            pl_pipeline_sync_stats(pl_app_pipeline(app), &syncs, &checkpoints);
        }
        CHECK(most_frames * PL_SYNCER_PAGE_BYTES >= PL_SYNCER_CHECKPOINT_BYTES);
        CHECK(checkpoints >= 1);
        CHECK(syncs > 10 * checkpoints);
        /* started over: far below where it was checkpointed */
        CHECK(pl_store_wal_frames(pl_app_store(app)) < most_frames / 2);
        CHECK(deliveries == posted);
        for (int i = 0; i < posted; i++) CHECK(d[i].calls == 1 && d[i].status == 200);
        pl_app_close(app);
    }
    remove_tree(dir);
}

/* The loop and two turn threads: shoppers are spread over the threads and
 * each one's turns run in order on one of them, with its own state. */
TEST(turn_threads_keep_each_shopper_in_order) {
    char dir[] = "/tmp/parley-test-threads-XXXXXX";
    char path[96];
    if (!temp_db(dir, path, sizeof path)) return;
    /* SQLite: a file, which the turn threads read with connections of their own */
    pl_app *app = on_postgres ? open_app_threads(3) : open_app_with(path, PL_SYNC_FULL, 3);
    CHECK(app != NULL);
    if (app) {
        interleaved_users(app);
        /* an erasure reaches the cache of the thread that owns the session */
        delivery erase = {0}, again = {0};
        pl_pipeline_erase(pl_app_pipeline(app), pl_app_bot(app, 0), "rest", "t3", on_deliver, &erase);
        post(app, "t3", "hi", &again);
        pl_app_drain(app);
        CHECK(erase.calls == 1 && erase.status == 200);
        CHECK(again.calls == 1 && again.status == 200 && !again.fallback);
        char *state = stored_session(app, "t3");
        json_t *j = state ? json_loads(state, 0, NULL) : NULL;
        CHECK(json_integer_value(json_object_get(j, "turn")) == 1);
        json_decref(j);
        free(state);
        pl_app_close(app);
    }
    remove_tree(dir);
}

TEST(erase_behind_messages) {
    pl_app *app = open_app();
    if (!app) return;
    fallback_text = pl_bot_static_fallback(pl_app_bot(app, 0), "en");
    deliveries = 0;
    pl_bot *bot = pl_app_bot(app, 0);
    delivery m1 = {0}, m2 = {0}, erase = {0}, again = {0}, other = {0};
    post(app, "carol", "hi", &m1);
    post(app, "dave", "hi", &other);
    post(app, "carol", "a latte please", &m2);
    pl_pipeline_erase(pl_app_pipeline(app), bot, "rest", "carol", on_deliver, &erase);
    pl_app_drain(app);
    CHECK(m1.calls == 1 && m2.calls == 1 && erase.calls == 1 && other.calls == 1);
    CHECK(m1.status == 200 && m2.status == 200);
    CHECK(erase.status == 200);
    CHECK(erase.order > m2.order && m2.order > m1.order);
    char *state = stored_session(app, "carol");
    CHECK(state == NULL);
    free(state);
    state = stored_session(app, "dave");
    CHECK(state != NULL);
    free(state);
    /* nothing left to erase */
    pl_pipeline_erase(pl_app_pipeline(app), bot, "rest", "carol", on_deliver, &again);
    pl_app_drain(app);
    CHECK(again.calls == 1 && again.status == 404);
    pl_app_close(app);
}

TEST(pending_messages_freed_on_close) {
    /* closing with queued messages must not leak or deliver */
    pl_app *app = open_app();
    if (!app) return;
    delivery d[3];
    memset(d, 0, sizeof d);
    post(app, "erin", "hi", &d[0]);
    post(app, "erin", "latte", &d[1]);
    post(app, "frank", "hi", &d[2]);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == 3);
    pl_app_close(app);
    CHECK(d[0].calls == 0 && d[1].calls == 0 && d[2].calls == 0);
}

/* A record whose writer reads what it writes (as a payment confirmation
 * does): it sees what was committed, its events' messages run as turns
 * after its commit, and on a database server it runs off the loop. */
typedef struct {
    pthread_t ran_on;
    int saw_session;
    int recorded;
} record_probe;

static int probe_writer(pl_store *store, void *ud, json_t *events, char **err) {
    record_probe *p = ud;
    p->ran_on = pthread_self();
    pl_session_key key = {"barista", "rest", "rita"};
    char *state = NULL;
    if (pl_store_session_get(store, &key, &state, err) != PL_OK) return PL_ERR;
    p->saw_session = state != NULL;
    free(state);
    json_array_append_new(events, json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", "message", "id", "probe-1", "user",
                                            "rita", "channel", "rest", "text", "a latte please"));
    return PL_OK;
}

static void probe_recorded(int status, void *ud) { ((record_probe *)ud)->recorded = status; }

TEST(record_with_a_writer_that_reads) {
    pl_app *app = open_app();
    if (!app) return;
    fallback_text = pl_bot_static_fallback(pl_app_bot(app, 0), "en");
    errors_logged = 0;
    delivery hi = {0};
    post(app, "rita", "hi", &hi);
    pl_app_drain(app);
    record_probe p = {0};
    pl_pipeline_record_with(pl_app_pipeline(app), pl_app_bot(app, 0), probe_writer, &p, probe_recorded, &p);
    pl_app_drain(app);
    CHECK(p.recorded == 200);
    CHECK(p.saw_session);
    CHECK(pthread_equal(p.ran_on, pthread_self()) == !on_postgres);
    /* the event's message ran a turn after the record */
    pl_session_key key = {"barista", "rest", "rita"};
    json_t *lines = NULL;
    char *err = NULL;
    CHECK(pl_store_transcript_get(pl_app_store(app), &key, 10, &lines, &err) == 0);
    CHECK(json_array_size(lines) == 4); /* hi and its answer, the latte and its answer */
    json_decref(lines);
    free(err);
    CHECK(errors_logged == 0);
    pl_app_close(app);
}

/* --- a lock held by another process ------------------------------------------ */

typedef struct {
    sqlite3 *other; /* a second connection, as another process would hold */
    int recorded;
    int locked;
} lock_state;

static int retries_logged;

static void count_retries(pl_log_level level, const char *line, void *ud) {
    (void)ud;
    if (strstr(line, "could not be committed; retrying")) retries_logged++;
    else count_errors(level, line, NULL);
}

/* The webhook is acknowledged: from now on another process holds the lock,
 * so the turn of the message it carried cannot commit. */
static void on_recorded_then_lock(int status, void *ud) {
    lock_state *st = ud;
    st->recorded = status;
    st->locked = sqlite3_exec(st->other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK;
}

TEST(acknowledged_message_survives_a_held_lock) {
    char dir[] = "/tmp/parley-test-lock-XXXXXX";
    if (!mkdtemp(dir)) return;
    char *db = pl_strdupf("%s/parley.db", dir);
    char *dirs[] = {bot_dir};
    pl_app_config config = {.db_path = db, .sync = PL_SYNC_NORMAL, .bot_dirs = dirs, .nbots = 1};
    pl_app *app = NULL;
    char *err = NULL;
    CHECK(pl_app_open(&config, &app, &err) == 0);
    lock_state st = {0};
    CHECK(sqlite3_open(db, &st.other) == SQLITE_OK);
    if (!app || !st.other) return;
    pl_log_set_sink(count_retries, NULL, 0);
    retries_logged = 0;
    pl_bot *bot = pl_app_bot(app, 0);
    json_t *events = json_pack("[{s:s, s:s, s:s, s:s}]", "kind", "message", "id", "wamid.1", "user", "locked-1",
                               "text", "hi");
    pl_pipeline_record(pl_app_pipeline(app), bot, "rest", events, on_recorded_then_lock, &st);
    struct event_base *base = pl_app_base(app);
    while (!retries_logged && event_base_loop(base, EVLOOP_ONCE) == 0) {}
    CHECK(st.recorded == 200 && st.locked);
    CHECK(pl_pipeline_pending(pl_app_pipeline(app)) == 1); /* kept, not dropped */
    sqlite3_exec(st.other, "COMMIT", NULL, NULL, NULL);
    pl_app_drain(app);
    pl_session_key key = {"barista", "rest", "locked-1"};
    json_t *lines = NULL;
    CHECK(pl_store_transcript_get(pl_app_store(app), &key, 10, &lines, &err) == 0);
    CHECK(json_array_size(lines) == 2); /* what the shopper said, what the bot answered */
    json_decref(lines);
    json_t *pending = NULL;
    CHECK(pl_store_inbox_pending(pl_app_store(app), INT64_MAX, &pending, &err) == 0 && json_array_size(pending) == 0);
    json_decref(pending);
    pl_log_set_sink(count_errors, NULL, 0);
    sqlite3_close(st.other);
    pl_app_close(app);
    remove_tree(dir);
    free(db);
}

static void on_recorded(int status, void *ud) { *(int *)ud = status; }

/* A bot over its share: a message someone waits for is refused with 503
 * and Retry-After; one a platform delivered (acknowledged) waits its turn. */
TEST(over_share_refuses_waiting_and_delays_delivered) {
    pl_app *app = open_app();
    if (!app) return;
    pl_bot *bot = pl_app_bot(app, 0);
    pl_usage *usage = pl_bot_usage(bot);
    pl_usage_add(usage, 2 * PL_DEFAULT_BURST_MS * 1000); /* far past its burst */
    CHECK(pl_usage_wait_ms(usage) == 0); /* alone, a bot may use the whole loop */
    pl_usage_add(usage, 2 * PL_DEFAULT_BURST_MS * 1000);
    pl_usage *neighbour = pl_usage_new(); /* another bot that wants the loop too */
    pl_usage_run(neighbour);
    CHECK(pl_usage_wait_ms(usage) > 0);
    delivery d = {0};
    post(app, "greedy-1", "hi", &d);
    pl_app_drain(app);
    CHECK(d.calls == 1 && d.status == 503 && d.nreplies == 0);
    int recorded = 0;
    json_t *events = json_pack("[{s:s, s:s, s:s, s:s}]", "kind", "message", "id", "m-delayed", "user", "greedy-2",
                               "text", "hi");
    pl_pipeline_record(pl_app_pipeline(app), bot, "rest", events, on_recorded, &recorded);
    pl_app_drain(app); /* returns once the delayed turn has run and committed */
    CHECK(recorded == 200);
    pl_session_key key = {"barista", "rest", "greedy-2"};
    json_t *lines = NULL;
    char *err = NULL;
    CHECK(pl_store_transcript_get(pl_app_store(app), &key, 10, &lines, &err) == 0 && json_array_size(lines) == 2);
    json_decref(lines);
    json_t *u = pl_usage_json(usage);
    CHECK(json_integer_value(json_object_get(u, "refused")) == 1);
    CHECK(json_integer_value(json_object_get(u, "delayed")) >= 1);
    json_decref(u);
    pl_usage_free(neighbour);
    pl_app_close(app);
}

/* The cases both backends run. */
#define SHARED(X)                                  \
    X(app_opens_default_bot)                       \
    X(one_user_in_order)                           \
    X(transcript_lines_in_as_jansson_wrote_them)   \
    X(many_users_each_in_order)                    \
    X(erase_behind_messages)                       \
    X(pending_messages_freed_on_close)             \
    X(over_share_refuses_waiting_and_delays_delivered) \
    X(turn_threads_keep_each_shopper_in_order)     \
    X(record_with_a_writer_that_reads)

#define ON_SQLITE(name) RUN_AS("sqlite: " #name, name);
#define ON_POSTGRES(name) RUN_AS("postgresql: " #name, name);

int main(void) {
    pl_log_set_level(PL_LOG_WARN);
    pl_log_set_sink(count_errors, NULL, 0);
    if (!copy_bot()) {
        printf("not ok 1 - could not copy the default bot\n1..1\n");
        return 1;
    }
    SHARED(ON_SQLITE)
    RUN(acknowledged_message_survives_a_held_lock);
    RUN(sync_thread_makes_commits_durable_before_delivery);
    RUN(wal_starts_over_after_a_held_checkpoint);
    on_postgres = 1;
    SHARED(ON_POSTGRES)
    remove_bot();
    return check_done();
}
