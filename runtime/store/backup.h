/* backup: an online copy of a SQLite store, taken while parley serves it.
 *
 * SQLite's online backup API copies the database page by page from one
 * read snapshot (WAL: the server's writers go on meanwhile), into
 * DEST.partial beside the destination (mode 0600, never through a
 * symlink, locked while written; one a killed run left is removed by the
 * next), which is checked (PRAGMA integrity_check) and then renamed over
 * it: the destination is either the old file or a whole, checked copy,
 * never half of one. Plain C and
 * sqlite3: `parley backup` (cli/backup.c) and a C test drive it alike.
 * A PostgreSQL database is not copied here (pg_dump does that). */
#ifndef PL_STORE_BACKUP_H
#define PL_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* pages copied per step (0: 1024): the steps pace the copy and report
     * its progress; all of them read the one snapshot the copy began with */
    int pages_per_step;
    /* a pause between steps (0: none), to spare the disk of a busy server;
     * the server writes on meanwhile */
    int pause_ms;
    /* how long to keep retrying while the source is busy or locked
     * (SQLITE_BUSY/SQLITE_LOCKED) before giving up (0: 60000) */
    int busy_timeout_ms;
    /* replace dest when it exists (otherwise an existing dest is an error) */
    int replace;
    /* SIGINT, SIGTERM and SIGHUP during the copy remove the partial copy
     * before the signal ends the process (the command line's; a library
     * caller that handles those signals itself leaves this 0) */
    int clean_on_signal;
    /* called after each step with the pages copied so far and the total
     * (may be NULL) */
    void (*progress)(int copied, int total, void *ud);
    /* called each time the source was busy or locked, before the wait to
     * try again (may be NULL) */
    void (*busy)(int retries, void *ud);
    void *ud;
} pl_backup_options;

typedef struct {
    int pages, page_size;
    int64_t bytes;
    int schema_version; /* of the copy (its schema_migrations) */
    int steps, busy_retries;
} pl_backup_report;

/* Copies the SQLite database at src into dest (written as dest's folder's
 * temporary file, checked, then renamed to dest and the folder synced).
 * PL_OK with *report filled, or PL_ERR with a new message in *err (nothing
 * is left at dest's temporary name, and dest is as it was). src must be a
 * parley database (it has schema_migrations). */
int pl_backup_sqlite(const char *src, const char *dest, const pl_backup_options *options, pl_backup_report *report,
                     char **err);

#endif
