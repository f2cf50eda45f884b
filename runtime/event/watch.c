/* watch: the inotify watcher behind hot reload; see watch.h. */
#define _GNU_SOURCE
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE)

typedef struct {
    char *root;   /* the bot folder */
    pl_watch_fn fn;
    void *ud;
    char *changed; /* first change seen in this batch, relative to root */
} folder;

typedef struct {
    int wd;
    size_t folder;
    char *rel; /* "" for the root, else "flows", "flows/sub" ... */
} dir_watch;

struct pl_watch {
    int fd;
    struct event *ev;
    struct event *settle_ev; /* fires settle_ms after the last change event */
    int settle_ms;
    int settling;            /* some folder has a change waiting for quiet */
    int64_t last_change_us;  /* when the latest change was read (pl_monotonic_us) */
    folder *folders;
    size_t nfolders;
    dir_watch *dirs;
    size_t ndirs;
};

static const char *const watched_subdirs[] = {"flows", "scripts", "lib"};

int pl_watch_is_bot_file(const char *name) {
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (strcmp(dot, ".lua") == 0 || strcmp(dot, ".json") == 0 || strcmp(dot, ".csv") == 0);
}

int pl_watch_is_bot_folder(const char *name) {
    for (size_t i = 0; i < sizeof watched_subdirs / sizeof *watched_subdirs; i++)
        if (strcmp(name, watched_subdirs[i]) == 0) return 1;
    return 0;
}

static void add_dir(pl_watch *w, size_t f, const char *rel);

/* Watches dir and, when recursive, every subfolder in it. */
static void add_tree(pl_watch *w, size_t f, const char *rel) {
    add_dir(w, f, rel);
    char *path = pl_strdupf("%s/%s", w->folders[f].root, rel);
    DIR *d = opendir(path);
    free(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR) continue;
        char *sub = pl_strdupf("%s/%s", rel, e->d_name);
        add_tree(w, f, sub);
        free(sub);
    }
    closedir(d);
}

static void add_dir(pl_watch *w, size_t f, const char *rel) {
    char *path = *rel ? pl_strdupf("%s/%s", w->folders[f].root, rel) : pl_strdup(w->folders[f].root);
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    free(path);
    if (wd < 0) return; /* the folder does not exist (yet) */
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd) return;
    w->dirs = realloc(w->dirs, sizeof *w->dirs * (w->ndirs + 1));
    w->dirs[w->ndirs++] = (dir_watch){wd, f, pl_strdup(rel)};
}

static dir_watch *find_dir(pl_watch *w, int wd) {
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd) return &w->dirs[i];
    return NULL;
}

static int is_watched_subdir(const char *rel, const char *name) {
    return *rel || pl_watch_is_bot_folder(name); /* below flows/, scripts/ or lib/: every folder */
}

/* Notes a change event; 1 when it concerns a bot (a file or folder that
 * reloads it), which starts its quiet period again. */
static int handle_event(pl_watch *w, const struct inotify_event *ev) {
    dir_watch *d = find_dir(w, ev->wd);
    if (!d || ev->len == 0) return 0;
    size_t f = d->folder;
    char *rel = *d->rel ? pl_strdupf("%s/%s", d->rel, ev->name) : pl_strdup(ev->name);
    int relevant = 0;
    if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        if (is_watched_subdir(d->rel, ev->name)) add_tree(w, f, rel);
        relevant = 1;
    } else if (!(ev->mask & IN_CREATE) && pl_watch_is_bot_file(ev->name)) {
        relevant = 1; /* a created file is complete only at IN_CLOSE_WRITE */
    }
    if (relevant && !w->folders[f].changed) w->folders[f].changed = pl_strdup(rel);
    if (relevant) w->last_change_us = pl_monotonic_us();
    free(rel);
    w->settling |= relevant;
    return relevant;
}

/* The first change waiting, for the log. */
static const char *first_changed(const pl_watch *w) {
    for (size_t i = 0; i < w->nfolders; i++)
        if (w->folders[i].changed) return w->folders[i].changed;
    return "?";
}

/* The callback of every folder with a change, each once. */
static void run_changed(pl_watch *w) {
    w->settling = 0;
    for (size_t i = 0; i < w->nfolders; i++) {
        char *changed = w->folders[i].changed;
        if (!changed) continue;
        w->folders[i].changed = NULL;
        w->folders[i].fn(changed, w->folders[i].ud);
        free(changed);
    }
}

int64_t pl_watch_settle_ms(pl_watch *w, int quiet_ms) {
    if (!w || !w->settling) return 0;
    int64_t age_us = pl_monotonic_us() - w->last_change_us;
    if (age_us < (int64_t)quiet_ms * 1000) {
        pl_debug("a message waits up to %d ms for a change to %s, %lld ms ago, to be written out", quiet_ms,
                 first_changed(w), (long long)(age_us / 1000));
        return ((int64_t)quiet_ms * 1000 - age_us + 999) / 1000;
    }
    event_del(w->settle_ev);
    run_changed(w);
    return 0;
}

static void on_settled(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    run_changed(arg);
}

/* Reads the pending events; whether one was a change. */
static int read_changes(pl_watch *w) {
    char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    int moved = 0;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            moved |= handle_event(w, ev);
            p += sizeof *ev + ev->len;
        }
    }
    return moved;
}

void pl_watch_poll(pl_watch *w) {
    int moved = read_changes(w);
    if (!w->settling) return;
    if (w->settle_ms <= 0) {
        run_changed(w);
        return;
    }
    if (moved) { /* the quiet period starts again at the latest change */
        struct timeval quiet = {w->settle_ms / 1000, (w->settle_ms % 1000) * 1000};
        event_add(w->settle_ev, &quiet);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_watch_poll(arg);
}

pl_watch *pl_watch_new(struct event_base *base, int settle_ms, char **err) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        pl_fail(err, "inotify: %s", strerror(errno));
        return NULL;
    }
    pl_watch *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->fd = fd;
    w->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, w);
    /* first among the events of a loop turn, when the base has priorities */
    event_priority_set(w->ev, 0);
    event_add(w->ev, NULL);
    w->settle_ms = settle_ms;
    w->settle_ev = evtimer_new(base, on_settled, w);
    event_priority_set(w->settle_ev, 0);
    return w;
}

int pl_watch_add(pl_watch *w, const char *dir, pl_watch_fn fn, void *ud, char **err) {
    w->folders = realloc(w->folders, sizeof *w->folders * (w->nfolders + 1));
    size_t f = w->nfolders++;
    w->folders[f] = (folder){pl_strdup(dir), fn, ud, NULL};
    size_t before = w->ndirs;
    add_dir(w, f, "");
    if (w->ndirs == before) return pl_fail(err, "%s: cannot watch: %s", dir, strerror(errno));
    for (size_t i = 0; i < sizeof watched_subdirs / sizeof *watched_subdirs; i++)
        add_tree(w, f, watched_subdirs[i]);
    return PL_OK;
}

void pl_watch_free(pl_watch *w) {
    if (!w) return;
    event_free(w->ev);
    event_free(w->settle_ev);
    close(w->fd);
    for (size_t i = 0; i < w->nfolders; i++) {
        free(w->folders[i].root);
        free(w->folders[i].changed);
    }
    for (size_t i = 0; i < w->ndirs; i++) free(w->dirs[i].rel);
    free(w->folders);
    free(w->dirs);
    free(w);
}
