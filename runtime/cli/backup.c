/* backup: `parley backup [--db FILE] DEST`, an online copy of the SQLite
 * store while `parley serve` goes on serving it (store/backup.h does the
 * copying); a PostgreSQL database is pointed to pg_dump. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "cli.h"
#include "store/backup.h"
#include "store/store.h"

static const char backup_usage[] =
    "usage: parley backup [--db FILE] [--replace] [--wait S] [--step PAGES] [--pause MS] [--quiet] DEST\n"
    "\n"
    "Copies the SQLite database into the file DEST while parley serves it: one\n"
    "consistent snapshot (every turn committed before the copy began, none half\n"
    "written), taken with SQLite's online backup API without stopping the\n"
    "server's writes. The copy is written beside DEST (DEST.partial, mode 0600,\n"
    "removed when the copy fails or is interrupted), checked (PRAGMA\n"
    "integrity_check) and then renamed to DEST, so DEST is never half a copy.\n"
    "To restore, stop parley and put the copy in the database's place (remove\n"
    "the old file's -wal and -shm beside it), or serve it with --db DEST.\n"
    "\n"
    "  --db FILE     the database (default: PARLEY_DATABASE_URL, else parley.db);\n"
    "                a PostgreSQL database is backed up with pg_dump instead\n"
    "  --replace     write over DEST when it exists (default: refuse)\n"
    "  --wait S      how long to keep trying while the database is locked\n"
    "                (default 60)\n"
    "  --step PAGES  pages copied at a time (default 1024): every step reads the\n"
    "                same snapshot; the steps pace the copy and report progress\n"
    "  --pause MS    rest MS milliseconds between steps (default 0), to spare the\n"
    "                disk of a busy server; it writes on meanwhile\n"
    "  --quiet       print nothing but errors\n"
    "  --help        this text\n"
    "\n"
    "Exits 0 when DEST holds the checked copy, 1 when the copy failed (DEST is\n"
    "then as it was), 2 for a usage error or a PostgreSQL database.\n";

typedef struct {
    int quiet;
    int last_tenth; /* of the progress printed */
} progress_state;

/* A line per tenth of the copy, for a large database's patient admin. */
static void on_progress(int copied, int total, void *ud) {
    progress_state *p = ud;
    if (p->quiet || total <= 0) return;
    int tenth = (int)((int64_t)copied * 10 / total);
    if (tenth == p->last_tenth || tenth == 10) return;
    p->last_tenth = tenth;
    printf("copied %d of %d pages\n", copied, total);
    fflush(stdout);
}

/* text is a whole number from min to max (into *n). */
static int whole_number(const char *text, long min, long max, long *n) {
    char *end = NULL;
    *n = strtol(text, &end, 10);
    return end != text && *end == '\0' && *n >= min && *n <= max;
}

int pl_cmd_backup(int argc, char **argv) {
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"replace", no_argument, 0, 'r'},
                                         {"wait", required_argument, 0, 'w'},
                                         {"step", required_argument, 0, 's'},
                                         {"pause", required_argument, 0, 'p'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *db = getenv("PARLEY_DATABASE_URL"); /* set but empty: not set */
    if (!db || !*db) db = "parley.db";
    progress_state progress = {.last_tenth = 0};
    pl_backup_options options = {.progress = on_progress, .ud = &progress, .clean_on_signal = 1};
    int c;
    long n = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'r': options.replace = 1; break;
        case 'q': progress.quiet = 1; break;
        case 'w':
            if (!whole_number(optarg, 1, 86400, &n)) return pl_cli_usage_error("backup", "--wait wants seconds from 1 to 86400");
            options.busy_timeout_ms = (int)(n * 1000);
            break;
        case 's':
            if (!whole_number(optarg, 1, 1 << 20, &n))
                return pl_cli_usage_error("backup", "--step wants a number of pages from 1 to 1048576");
            options.pages_per_step = (int)n;
            break;
        case 'p':
            if (!whole_number(optarg, 0, 60000, &n))
                return pl_cli_usage_error("backup", "--pause wants milliseconds from 0 to 60000");
            options.pause_ms = (int)n;
            break;
        case 'h': fputs(backup_usage, stdout); return 0;
        default: return pl_cli_usage_error("backup", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return pl_cli_usage_error("backup", "give the file to write the backup to (DEST)");
    if (argc - optind > 1) return pl_cli_usage_error("backup", "one DEST at a time");
    const char *dest = argv[optind];
    if (pl_store_is_postgres(db)) {
        fprintf(stderr,
                "parley backup: the database is PostgreSQL's: back it up with its own tools, which copy it\n"
                "while parley serves, such as\n"
                "  pg_dump --format=custom --file=parley.dump \"$PARLEY_DATABASE_URL\"\n"
                "(docs/deployment.md#backups)\n");
        return PL_EXIT_USAGE;
    }
    pl_backup_report report;
    char *err = NULL;
    if (pl_backup_sqlite(db, dest, &options, &report, &err) != PL_OK) {
        fprintf(stderr, "parley backup: %s\n", err);
        free(err);
        return 1;
    }
    if (!progress.quiet)
        printf("backed up %s to %s: %d pages of %d bytes (%lld bytes), schema version %d, integrity check ok "
               "(%d step%s, %d wait%s for a lock)\n",
               db, dest, report.pages, report.page_size, (long long)report.bytes, report.schema_version, report.steps,
               report.steps == 1 ? "" : "s", report.busy_retries, report.busy_retries == 1 ? "" : "s");
    return 0;
}
