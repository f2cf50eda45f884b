/* test_backup: online backups of a SQLite store (store/backup.h). A copy
 * taken while another connection commits between its steps reads one
 * snapshot (what was committed before it began, not what came during) and
 * is never restarted; the copy opens as a store; a database locked by
 * another connection is waited for, up to a limit; DEST is whole or as it
 * was; and the errors say what is wrong. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "check.h"
#include "store/backup.h"
#include "store/store.h"

static char folder[] = "/tmp/parley-test-backup-XXXXXX";

static char *in_folder(const char *name) { return pl_strdupf("%s/%s", folder, name); }

static int put_session(pl_store *store, const char *user, const char *state) {
    pl_session_key key = {"barista", "rest", user};
    char *err = NULL;
    int rc = pl_store_begin(store, &err);
    if (rc == PL_OK) rc = pl_store_session_put(store, &key, state, -1, 1000, &err);
    if (rc == PL_OK) rc = pl_store_commit(store, &err);
    if (rc != PL_OK) printf("#   put %s: %s\n", user, err);
    free(err);
    return rc;
}

static char *get_session(pl_store *store, const char *user) {
    pl_session_key key = {"barista", "rest", user};
    char *state = NULL, *err = NULL;
    if (pl_store_session_get(store, &key, &state, &err) != PL_OK) printf("#   get %s: %s\n", user, err);
    free(err);
    return state;
}

/* A database of many pages: sessions with a padded state. */
static pl_store *filled_store(const char *path, int sessions) {
    pl_store *store = NULL;
    char *err = NULL;
    if (pl_store_open(path, PL_SYNC_NORMAL, &store, &err) != PL_OK) {
        printf("#   open %s: %s\n", path, err);
        free(err);
        return NULL;
    }
    char pad[2001];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < sessions; i++) {
        char user[32], *state = pl_strdupf("{\"n\":%d,\"pad\":\"%s\"}", i, pad);
        snprintf(user, sizeof user, "u%d", i);
        put_session(store, user, state);
        free(state);
    }
    return store;
}

typedef struct {
    pl_store *writer;
    int calls;
} during;

/* Between two steps of the copy, another connection commits. */
static void commit_during_copy(int copied, int total, void *ud) {
    (void)copied;
    (void)total;
    during *d = ud;
    char user[32];
    snprintf(user, sizeof user, "during%d", d->calls++);
    put_session(d->writer, user, "{\"during\":true}");
}

TEST(one_snapshot_while_another_connection_commits) {
    char *src = in_folder("live.db"), *dest = in_folder("copy.db");
    pl_store *live = filled_store(src, 200);
    CHECK(live != NULL);
    if (!live) goto done;
    during d = {.writer = live};
    pl_backup_options o = {.pages_per_step = 5, .progress = commit_during_copy, .ud = &d};
    pl_backup_report r;
    char *err = NULL;
    CHECK(pl_backup_sqlite(src, dest, &o, &r, &err) == PL_OK);
    if (err) printf("#   %s\n", err);
    free(err);
    CHECK(d.calls > 10); /* many steps, a commit after each */
    CHECK(r.pages > 50);
    CHECK(r.steps - r.busy_retries == (r.pages + 4) / 5); /* never restarted */
    CHECK(r.page_size > 0 && r.bytes == (int64_t)r.pages * r.page_size);
    CHECK(r.schema_version >= 10);
    pl_store *copy = NULL;
    CHECK(pl_store_open(dest, PL_SYNC_NORMAL, &copy, &err) == PL_OK);
    if (copy) {
        char *first = get_session(copy, "u0"), *last = get_session(copy, "u199"), *later = get_session(copy, "during0");
        CHECK(first && strstr(first, "\"n\":0"));
        CHECK(last && strstr(last, "\"n\":199"));
        CHECK(later == NULL); /* committed after the copy began */
        free(first);
        free(last);
        free(later);
        pl_store_close(copy);
    }
    char *live_later = get_session(live, "during0");
    CHECK(live_later != NULL);
    free(live_later);
    pl_store_close(live);
done:
    free(src);
    free(dest);
}

/* The copy holds shoppers' data: 0600 whatever the umask lets through;
 * a partial copy a killed run left is removed by the next run; a symlink
 * at the partial copy's name is never followed; a run that is writing the
 * partial copy keeps it. */
TEST(partial_copy_private_and_cleaned) {
    char *src = in_folder("private.db"), *dest = in_folder("private-copy.db"), *target = in_folder("target");
    char *partial = pl_strdupf("%s.partial", dest), *journal = pl_strdupf("%s.partial-journal", dest);
    pl_store *store = filled_store(src, 3);
    CHECK(store != NULL);
    pl_backup_report r;
    char *err = NULL;
    mode_t before = umask(022);
    /* what a killed run left: the partial copy and its journal */
    FILE *f = fopen(partial, "w");
    if (f) fclose(f);
    f = fopen(journal, "w");
    if (f) fclose(f);
    CHECK(pl_backup_sqlite(src, dest, NULL, &r, &err) == PL_OK);
    struct stat st;
    CHECK(stat(dest, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(access(partial, F_OK) != 0);
    CHECK(access(journal, F_OK) != 0);
    /* a symlink at the partial copy's name: refused, its target untouched */
    f = fopen(target, "w");
    if (f) {
        fputs("keep", f);
        fclose(f);
    }
    CHECK(symlink(target, partial) == 0);
    pl_backup_options replace = {.replace = 1};
    free(err);
    err = NULL;
    CHECK(pl_backup_sqlite(src, dest, &replace, &r, &err) == PL_ERR);
    CHECK(err && strstr(err, "not a regular file"));
    CHECK(stat(target, &st) == 0 && st.st_size == 4);
    struct stat link;
    CHECK(lstat(partial, &link) == 0 && S_ISLNK(link.st_mode));
    unlink(partial);
    /* another run holds the partial copy: left alone */
    int held = open(partial, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0);
    free(err);
    err = NULL;
    CHECK(pl_backup_sqlite(src, dest, &replace, &r, &err) == PL_ERR);
    CHECK(err && strstr(err, "another parley backup is writing"));
    CHECK(access(partial, F_OK) == 0);
    if (held >= 0) close(held);
    unlink(partial);
    umask(before);
    free(err);
    pl_store_close(store);
    free(src);
    free(dest);
    free(target);
    free(partial);
    free(journal);
}

TEST(dest_whole_or_as_it_was) {
    char *src = in_folder("small.db"), *dest = in_folder("small-copy.db"), *stranger = in_folder("stranger.db");
    char *partial = pl_strdupf("%s.partial", dest);
    pl_store *store = filled_store(src, 3);
    CHECK(store != NULL);
    pl_backup_report r;
    char *err = NULL;
    CHECK(pl_backup_sqlite(src, dest, NULL, &r, &err) == PL_OK);
    free(err);
    err = NULL;
    struct stat first, again;
    CHECK(stat(dest, &first) == 0);
    /* there already: refused unless replace */
    CHECK(pl_backup_sqlite(src, dest, NULL, &r, &err) == PL_ERR);
    CHECK(err && strstr(err, "exists: give a new name"));
    free(err);
    err = NULL;
    /* not a parley database: refused, dest as it was, nothing beside it */
    sqlite3 *db = NULL;
    sqlite3_open(stranger, &db);
    sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL);
    sqlite3_close(db);
    pl_backup_options replace = {.replace = 1};
    CHECK(pl_backup_sqlite(stranger, dest, &replace, &r, &err) == PL_ERR);
    CHECK(err && strstr(err, "not a parley database"));
    free(err);
    err = NULL;
    CHECK(stat(dest, &again) == 0 && again.st_ino == first.st_ino);
    CHECK(access(partial, F_OK) != 0);
    /* replace: a new file in its place */
    CHECK(pl_backup_sqlite(src, dest, &replace, &r, &err) == PL_OK);
    CHECK(stat(dest, &again) == 0 && again.st_ino != first.st_ino);
    CHECK(access(partial, F_OK) != 0);
    free(err);
    err = NULL;
    /* a source that is not there */
    char *none = in_folder("none.db");
    CHECK(pl_backup_sqlite(none, dest, &replace, &r, &err) == PL_ERR);
    CHECK(err && strstr(err, "No such file"));
    free(err);
    free(none);
    pl_store_close(store);
    free(src);
    free(dest);
    free(stranger);
    free(partial);
}

/* Another connection takes the database for itself (exclusive locking
 * mode: readers get SQLITE_BUSY, WAL or not) until it lets go. */
typedef struct {
    const char *path;
    sqlite3 *db;
} locker;

static int lock_database(locker *l) {
    if (sqlite3_open(l->path, &l->db) != SQLITE_OK) return PL_ERR;
    return sqlite3_exec(l->db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; "
                               "INSERT INTO settings (name, value) VALUES ('locked', 'yes'); COMMIT;",
                        NULL, NULL, NULL) == SQLITE_OK
               ? PL_OK
               : PL_ERR;
}

/* The backup's busy hook: the locker lets go once the backup has found
 * the database busy and is about to wait (the lock goes with the
 * connection). */
static void release_when_waited(int retries, void *ud) {
    locker *l = ud;
    if (retries == 1 && l->db) {
        sqlite3_close(l->db);
        l->db = NULL;
    }
}

TEST(waits_for_a_lock_then_gives_up) {
    char *src = in_folder("locked.db"), *dest = in_folder("locked-copy.db");
    pl_store *store = filled_store(src, 3);
    CHECK(store != NULL);
    pl_store_close(store); /* only the locker has it now */
    pl_backup_report r;
    char *err = NULL;
    /* held past the wait: the backup gives up, saying so */
    locker held = {.path = src};
    CHECK(lock_database(&held) == PL_OK);
    pl_backup_options brief = {.busy_timeout_ms = 300};
    CHECK(pl_backup_sqlite(src, dest, &brief, &r, &err) == PL_ERR);
    CHECK(err && strstr(err, "busy"));
    if (err) printf("#   (as expected) %s\n", err);
    free(err);
    err = NULL;
    CHECK(r.busy_retries > 0);
    CHECK(access(dest, F_OK) != 0);
    /* let go of within the wait: the backup waited, then copied */
    pl_backup_options patient = {.busy_timeout_ms = 10000, .busy = release_when_waited, .ud = &held};
    CHECK(pl_backup_sqlite(src, dest, &patient, &r, &err) == PL_OK);
    if (err) printf("#   %s\n", err);
    free(err);
    CHECK(r.busy_retries > 0);
    CHECK(access(dest, F_OK) == 0);
    free(src);
    free(dest);
}

int main(void) {
    if (!mkdtemp(folder)) return 1;
    RUN(one_snapshot_while_another_connection_commits);
    RUN(waits_for_a_lock_then_gives_up);
    RUN(dest_whole_or_as_it_was);
    RUN(partial_copy_private_and_cleaned);
    char *rm = pl_strdupf("rm -rf '%s'", folder);
    if (system(rm) != 0) printf("# could not remove %s\n", folder);
    free(rm);
    return check_done();
}
