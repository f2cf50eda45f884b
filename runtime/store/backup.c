/* backup: an online copy of a SQLite store; see backup.h. Uses sqlite3's
 * backup API on connections of its own (never the server's), and POSIX for
 * the rename and the syncs that make the finished copy durable. */
#define _GNU_SOURCE
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

#define DEFAULT_PAGES_PER_STEP 1024
#define DEFAULT_BUSY_MS 60000
#define RETRY_SLEEP_MS 20

static int is_busy(int rc) { return rc == SQLITE_BUSY || rc == SQLITE_LOCKED; }

/* Runs sql on db, retrying while the database is busy or locked, until
 * deadline_us (pl_monotonic_us); an int result of its first row, if any,
 * goes to *value. Returns the last sqlite3 result code (SQLITE_OK, or the
 * error). */
/* The source was busy: counted, told, and waited out a little. */
static void wait_busy(const pl_backup_options *o, int *retries) {
    (*retries)++;
    if (o->busy) o->busy(*retries, o->ud);
    sqlite3_sleep(RETRY_SLEEP_MS);
}

static int run_retrying(sqlite3 *db, const char *sql, const pl_backup_options *o, int64_t deadline_us, int *value,
                        int *retries) {
    for (;;) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && value) *value = sqlite3_column_int(st, 0);
            if (rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (!is_busy(rc) || pl_monotonic_us() > deadline_us) return rc;
        wait_busy(o, retries);
    }
}

/* Opens the source to read and starts the read transaction whose snapshot
 * the whole copy is taken from: in WAL mode the server's writers go on
 * beside it, and the backup is never restarted by their commits. */
static int open_source(const char *src, const pl_backup_options *o, int64_t deadline_us, sqlite3 **out,
                       pl_backup_report *report, char **err) {
    struct stat st;
    if (stat(src, &st) != 0) return pl_fail(err, "%s: %s", src, strerror(errno));
    if (!S_ISREG(st.st_mode)) return pl_fail(err, "%s: not a database file", src);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        pl_fail(err, "%s: cannot open: %s", src, sqlite3_errmsg(db));
        sqlite3_close(db);
        return PL_ERR;
    }
    sqlite3_busy_timeout(db, 100);
    int rc = run_retrying(db, "BEGIN", o, deadline_us, NULL, &report->busy_retries);
    if (rc == SQLITE_OK)
        rc = run_retrying(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", o, deadline_us, NULL,
                          &report->busy_retries);
    if (rc != SQLITE_OK) {
        const char *why = sqlite3_errmsg(db);
        if (strstr(why, "no such table")) pl_fail(err, "%s: not a parley database (it has no schema_migrations)", src);
        else if (is_busy(rc)) pl_fail(err, "%s: still busy after waiting: %s", src, why);
        else pl_fail(err, "%s: cannot read: %s", src, why);
        sqlite3_close(db);
        return PL_ERR;
    }
    *out = db;
    return PL_OK;
}

/* Copies every page of src into dest in steps; PL_OK when done. */
static int copy_pages(sqlite3 *src, sqlite3 *dest, const pl_backup_options *o, int64_t deadline_us,
                      pl_backup_report *report, char **err) {
    sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
    if (!b) return pl_fail(err, "cannot start the copy: %s", sqlite3_errmsg(dest));
    int per_step = o->pages_per_step > 0 ? o->pages_per_step : DEFAULT_PAGES_PER_STEP;
    int rc;
    for (;;) {
        rc = sqlite3_backup_step(b, per_step);
        report->steps++;
        if (o->progress && (rc == SQLITE_OK || rc == SQLITE_DONE)) {
            int total = sqlite3_backup_pagecount(b);
            o->progress(total - sqlite3_backup_remaining(b), total, o->ud);
        }
        if (rc == SQLITE_DONE) break;
        if (rc == SQLITE_OK) {
            if (o->pause_ms > 0) sqlite3_sleep(o->pause_ms);
            continue;
        }
        if (!is_busy(rc) || pl_monotonic_us() > deadline_us) break;
        wait_busy(o, &report->busy_retries);
    }
    report->pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE) return PL_OK;
    return pl_fail(err, "copying failed%s: %s", is_busy(rc) ? " (the database stayed busy)" : "",
                   sqlite3_errstr(rc));
}

/* Opens the finished copy afresh and checks it: every page and index
 * (integrity_check), and that it is a parley database. */
static int verify_copy(const char *path, pl_backup_report *report, char **err) {
    sqlite3 *db = NULL;
    int rc = PL_ERR;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        pl_fail(err, "the copy does not open: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        pl_fail(err, "the copy cannot be checked: %s", sqlite3_errmsg(db));
        goto done;
    }
    int step = sqlite3_step(st);
    const char *first = step == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (!first || strcmp(first, "ok") != 0) {
        pl_fail(err, "the copy fails its integrity check: %s", first ? first : sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* one self-contained file: a reader of the copy leaves no -wal beside
     * it (parley serve turns WAL on again when it opens the copy) */
    if (sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        pl_fail(err, "the copy cannot leave WAL mode: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_prepare_v2(db, "SELECT (SELECT max(version) FROM schema_migrations), page_size FROM pragma_page_size",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        pl_fail(err, "the copy has no schema version: %s", sqlite3_errmsg(db));
        goto done;
    }
    report->schema_version = sqlite3_column_int(st, 0);
    report->page_size = sqlite3_column_int(st, 1);
    report->bytes = (int64_t)report->pages * report->page_size;
    rc = PL_OK;
done:
    sqlite3_finalize(st);
    sqlite3_close(db); /* the last connection: its WAL, if any, goes into the file */
    return rc;
}

static int sync_path(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* dest may be written: not a folder, not there unless replace, and no WAL
 * of a connection that still has it open beside it. */
static int check_dest(const char *dest, int replace, char **err) {
    struct stat st;
    if (stat(dest, &st) != 0) return errno == ENOENT ? PL_OK : pl_fail(err, "%s: %s", dest, strerror(errno));
    if (S_ISDIR(st.st_mode)) return pl_fail(err, "%s is a folder: give the backup's file name", dest);
    if (!replace) return pl_fail(err, "%s exists: give a new name, or --replace to write over it", dest);
    for (const char *suffix = "-wal"; suffix; suffix = strcmp(suffix, "-wal") == 0 ? "-shm" : NULL) {
        char *side = pl_strdupf("%s%s", dest, suffix);
        int there = stat(side, &st) == 0;
        free(side);
        if (there)
            return pl_fail(err,
                           "%s%s exists: something has %s open (a parley serving it?) or did not close it cleanly; "
                           "stop that, or choose another name",
                           dest, suffix, dest);
    }
    return PL_OK;
}

static const char *const side_suffixes[] = {"-journal", "-wal", "-shm"};

/* Removes the partial copy's side files (SQLite's journal of it): unlink
 * removes a symlink itself, never what it points to. */
static void remove_sides(const char *tmp) {
    for (size_t i = 0; i < sizeof side_suffixes / sizeof *side_suffixes; i++) {
        char *p = pl_strdupf("%s%s", tmp, side_suffixes[i]);
        unlink(p);
        free(p);
    }
}

/* --- a signal during the copy ------------------------------------------------------- */

/* The partial copy's paths, for the handler (which may only unlink), and
 * whether this run created it. */
static char signal_paths[1 + sizeof side_suffixes / sizeof *side_suffixes][4096];
static volatile sig_atomic_t partial_claimed;

static void on_stop_signal(int sig) {
    if (partial_claimed)
        for (size_t i = 0; i < sizeof signal_paths / sizeof *signal_paths; i++) unlink(signal_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

typedef struct {
    struct sigaction before[sizeof stop_signals / sizeof *stop_signals];
    int installed;
} signal_guard;

static void guard_signals(const char *tmp, signal_guard *g) {
    g->installed = 0;
    if (strlen(tmp) + 16 >= sizeof signal_paths[0]) return; /* a path that long keeps SIG_DFL */
    snprintf(signal_paths[0], sizeof signal_paths[0], "%s", tmp);
    for (size_t i = 0; i < sizeof side_suffixes / sizeof *side_suffixes; i++)
        snprintf(signal_paths[i + 1], sizeof signal_paths[i + 1], "%s%s", tmp, side_suffixes[i]);
    struct sigaction on = {.sa_handler = on_stop_signal};
    sigemptyset(&on.sa_mask);
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) {
        sigaction(stop_signals[i], NULL, &g->before[i]);
        /* an ignored signal (nohup) stays ignored */
        if (g->before[i].sa_handler != SIG_IGN) sigaction(stop_signals[i], &on, NULL);
    }
    g->installed = 1;
}

static void unguard_signals(signal_guard *g) {
    partial_claimed = 0;
    if (!g->installed) return;
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) sigaction(stop_signals[i], &g->before[i], NULL);
}

/* --- the partial copy ------------------------------------------------------------------ */

/* Creates tmp for this run only: mode 0600 (the copy holds shoppers'
 * data), never through a symlink, locked (flock) while the copy is
 * written. A tmp a killed run left (a regular file of this user that no
 * run holds) is removed first; a symlink or anything else there is an
 * error. Returns the open descriptor, or -1 with *err. */
static int claim_partial(const char *tmp, char **err) {
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
                close(fd);
                pl_fail(err, "%s: cannot lock: %s", tmp, strerror(errno));
                return -1;
            }
            partial_claimed = 1;
            remove_sides(tmp);
            return fd;
        }
        if (errno != EEXIST) {
            pl_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
            return -1;
        }
        struct stat st;
        if (lstat(tmp, &st) != 0) continue; /* gone meanwhile */
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
            pl_fail(err, "%s is there and is not a regular file of this user (a symlink?): parley leaves it alone; "
                         "remove it, or choose another DEST",
                    tmp);
            return -1;
        }
        int old = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (old < 0) continue;
        int held = flock(old, LOCK_EX | LOCK_NB) != 0;
        if (!held) unlink(tmp); /* a killed run's: no one writes it */
        close(old);
        if (held) {
            pl_fail(err, "another parley backup is writing %s now", tmp);
            return -1;
        }
    }
    pl_fail(err, "%s: cannot create it: another backup keeps making it", tmp);
    return -1;
}

/* Removes the partial copy this run made (and its side files). */
static void remove_partial(const char *tmp) {
    unlink(tmp);
    remove_sides(tmp);
}

int pl_backup_sqlite(const char *src, const char *dest, const pl_backup_options *options, pl_backup_report *report,
                     char **err) {
    pl_backup_options o = options ? *options : (pl_backup_options){0};
    *report = (pl_backup_report){0};
    int64_t deadline_us = pl_monotonic_us() + (int64_t)(o.busy_timeout_ms > 0 ? o.busy_timeout_ms : DEFAULT_BUSY_MS) * 1000;
    if (check_dest(dest, o.replace, err) != PL_OK) return PL_ERR;
    sqlite3 *from = NULL, *to = NULL;
    char *tmp = pl_strdupf("%s.partial", dest);
    char *folder_of = pl_strdup(dest);
    int rc = PL_ERR;
    signal_guard guard = {0};
    if (o.clean_on_signal) guard_signals(tmp, &guard);
    int fd = claim_partial(tmp, err);
    if (fd < 0) goto done;
    if (open_source(src, &o, deadline_us, &from, report, err) != PL_OK) goto done;
    if (sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        pl_fail(err, "%s: cannot write: %s", tmp, sqlite3_errmsg(to));
        goto done;
    }
    if (copy_pages(from, to, &o, deadline_us, report, err) != PL_OK) goto done;
    sqlite3_close(to);
    to = NULL;
    sqlite3_close(from); /* ends the read snapshot */
    from = NULL;
    if (verify_copy(tmp, report, err) != PL_OK) goto done;
    if (sync_path(tmp, O_RDONLY) != 0) {
        pl_fail(err, "%s: cannot sync: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, dest) != 0) {
        pl_fail(err, "cannot rename %s to %s: %s", tmp, dest, strerror(errno));
        goto done;
    }
    partial_claimed = 0; /* it is dest now */
    sync_path(dirname(folder_of), O_RDONLY | O_DIRECTORY); /* the rename itself survives a power loss */
    rc = PL_OK;
done:
    if (to) sqlite3_close(to);
    if (from) sqlite3_close(from);
    if (rc != PL_OK && fd >= 0) remove_partial(tmp);
    if (fd >= 0) close(fd);
    unguard_signals(&guard);
    free(tmp);
    free(folder_of);
    return rc;
}
