/* log_file: `parley serve --log-file FILE`, the log in a file that can be
 * rotated. The file takes the place of stderr (dup2), so every line goes
 * there, parley's own (base/log.c writes to stderr) and any a library
 * writes; SIGHUP opens the file again by its name, so that a rotation that
 * renamed it (logrotate without copytruncate) has the next lines go to a new
 * file at the name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "cli.h"

static char *log_path; /* the file stderr is, or NULL */

/* Opens path to append (creating it, rw-r-----) and makes it stderr. */
static int open_onto_stderr(const char *path, char **err) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return pl_fail(err, "--log-file %s: %s", path, strerror(errno));
    fflush(stderr);
    int rc = dup2(fd, STDERR_FILENO) < 0 ? pl_fail(err, "--log-file %s: %s", path, strerror(errno)) : PL_OK;
    close(fd);
    return rc;
}

int pl_cli_log_file_open(const char *path, char **err) {
    if (open_onto_stderr(path, err) != PL_OK) return PL_ERR;
    free(log_path);
    log_path = pl_strdup(path);
    return PL_OK;
}

const char *pl_cli_log_file(void) { return log_path; }

int pl_cli_log_file_reopen(char **err) {
    if (!log_path) return pl_fail(err, "no --log-file to reopen");
    return open_onto_stderr(log_path, err);
}
