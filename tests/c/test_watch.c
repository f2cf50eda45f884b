/* test_watch: the inotify watcher behind hot reload (event/watch.c): a
 * change to a bot file calls back once its writes have settled, a save in
 * two writes (truncate, then write) calls back once, pl_watch_settle_ms
 * does not wait for settle_ms but for a change a few ms old to be written
 * out, and settle_ms 0 calls back with every batch of events.
 * Waits are for events, never for time: the settling deadline is far in
 * the future unless a case waits for the timer itself. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "check.h"
#include "event/watch.h"

typedef struct {
    int calls;
    char changed[256];
} seen;

static void on_change(const char *changed, void *ud) {
    seen *s = ud;
    s->calls++;
    snprintf(s->changed, sizeof s->changed, "%s", changed);
}

/* A bot folder with flows/ in a new temporary folder (owned by the caller). */
static char *bot_folder(void) {
    char tmpl[] = "/tmp/parley-test-watch-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) return NULL;
    char *flows = pl_strdupf("%s/flows", dir);
    mkdir(flows, 0755);
    free(flows);
    return pl_strdup(dir);
}

static void write_text(const char *dir, const char *rel, const char *text) {
    char *path = pl_strdupf("%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(path);
}

static void remove_tree(const char *dir) {
    char *cmd = pl_strdupf("rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("#   could not remove %s\n", dir);
    free(cmd);
}

typedef struct {
    struct event_base *base;
    pl_watch *watch;
    char *dir;
    seen seen;
} fixture;

static int open_fixture(fixture *fx, int settle_ms) {
    *fx = (fixture){0};
    char *err = NULL;
    fx->base = event_base_new();
    fx->dir = bot_folder();
    fx->watch = fx->base ? pl_watch_new(fx->base, settle_ms, &err) : NULL;
    if (fx->watch && fx->dir && pl_watch_add(fx->watch, fx->dir, on_change, &fx->seen, &err) == PL_OK) return 1;
    printf("#   no watcher: %s\n", err ? err : "no folder");
    free(err);
    return 0;
}

static void close_fixture(fixture *fx) {
    pl_watch_free(fx->watch);
    if (fx->base) event_base_free(fx->base);
    if (fx->dir) remove_tree(fx->dir);
    free(fx->dir);
}

TEST(truncate_then_write_calls_back_once) {
    fixture fx;
    if (open_fixture(&fx, 600000)) {
        write_text(fx.dir, "flows/main.lua", "");                     /* emptied, closed */
        pl_watch_poll(fx.watch);
        CHECK(fx.seen.calls == 0);
        write_text(fx.dir, "flows/main.lua", "return { start = function(c) end }\n"); /* then written */
        pl_watch_poll(fx.watch);
        CHECK(fx.seen.calls == 0); /* still settling */
        CHECK(pl_watch_settle_ms(fx.watch, 0) == 0);
        CHECK(fx.seen.calls == 1);
        CHECK_STR(fx.seen.changed, "flows/main.lua");
        CHECK(pl_watch_settle_ms(fx.watch, 0) == 0); /* nothing left to settle */
        pl_watch_poll(fx.watch);
        CHECK(fx.seen.calls == 1);
    }
    close_fixture(&fx);
}

/* A turn that comes just after a change (an editor's truncate, its write
 * still to come) is told to wait until the folder has been quiet quiet_ms
 * (the loop does not), nothing loaded meanwhile; a change that old is
 * loaded once. */
TEST(a_recent_change_is_waited_for) {
    fixture fx;
    if (open_fixture(&fx, 600000)) {
        write_text(fx.dir, "flows/main.lua", ""); /* emptied, closed: the write may follow */
        pl_watch_poll(fx.watch);
        int64_t wait = pl_watch_settle_ms(fx.watch, 60000);
        CHECK(wait > 0 && wait <= 60000);
        CHECK(fx.seen.calls == 0); /* not the empty file */
        CHECK(pl_watch_settle_ms(fx.watch, 0) == 0); /* quiet long enough: loaded now */
        CHECK(fx.seen.calls == 1);
        CHECK(pl_watch_settle_ms(fx.watch, 60000) == 0); /* nothing left: no wait */
        CHECK(fx.seen.calls == 1);
    }
    close_fixture(&fx);
}

TEST(other_files_do_not_count) {
    fixture fx;
    if (open_fixture(&fx, 600000)) {
        write_text(fx.dir, "notes.txt", "not a bot file");
        write_text(fx.dir, "flows/.main.lua.swp", "an editor's");
        pl_watch_poll(fx.watch);
        CHECK(pl_watch_settle_ms(fx.watch, 0) == 0);
        CHECK(fx.seen.calls == 0);
    }
    close_fixture(&fx);
}

static void give_up(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

TEST(quiet_folder_calls_back_after_settle_ms) {
    fixture fx;
    if (open_fixture(&fx, 20)) {
        struct event *limit = evtimer_new(fx.base, give_up, fx.base);
        struct timeval ten = {10, 0};
        evtimer_add(limit, &ten); /* a broken watcher fails the case, not the run */
        write_text(fx.dir, "bot.json", "{}");
        write_text(fx.dir, "bot.json", "{\"name\": \"w\"}");
        while (fx.seen.calls == 0 && evtimer_pending(limit, NULL)) event_base_loop(fx.base, EVLOOP_ONCE);
        CHECK(fx.seen.calls == 1);
        CHECK_STR(fx.seen.changed, "bot.json");
        event_free(limit);
    }
    close_fixture(&fx);
}

TEST(settle_zero_calls_back_with_each_batch) {
    fixture fx;
    if (open_fixture(&fx, 0)) {
        write_text(fx.dir, "flows/main.lua", "");
        pl_watch_poll(fx.watch);
        CHECK(fx.seen.calls == 1);
        write_text(fx.dir, "flows/main.lua", "return {}\n");
        pl_watch_poll(fx.watch);
        CHECK(fx.seen.calls == 2);
    }
    close_fixture(&fx);
}

int main(void) {
    RUN(truncate_then_write_calls_back_once);
    RUN(a_recent_change_is_waited_for);
    RUN(other_files_do_not_count);
    RUN(quiet_folder_calls_back_after_settle_ms);
    RUN(settle_zero_calls_back_with_each_batch);
    return check_done();
}
