/* cli: what the subcommands share — the default bot folder, the LuaLS
 * definitions' folder and the usage errors; see cli.h. */
#define _GNU_SOURCE
#include "cli.h"

#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

int pl_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "parley %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see: parley %s --help)\n", cmd);
    va_end(ap);
    return PL_EXIT_USAGE;
}

static int has_manifest(const char *dir) {
    char *path = pl_strdupf("%s/bot.json", dir);
    struct stat st;
    int ok = stat(path, &st) == 0;
    free(path);
    return ok;
}

/* The folder of the running parley binary (new string), or NULL. */
static char *binary_dir(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    return pl_strdup(dirname(exe));
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *pl_cli_types_dir(void) {
    char *bin = binary_dir();
    if (!bin) return NULL;
    char *found = NULL;
    char *candidates[2] = {pl_strdupf("%s/runtime/types", bin), pl_strdupf("%s/../share/parley/types", bin)};
    for (int i = 0; i < 2; i++) {
        if (!found && is_dir(candidates[i])) found = realpath(candidates[i], NULL);
        free(candidates[i]);
    }
    free(bin);
    return found;
}

char *pl_cli_default_bot(void) {
    if (has_manifest(".")) return pl_strdup(".");
    char *dir = binary_dir();
    if (!dir || has_manifest(dir)) return dir;
    char *installed = pl_strdupf("%s/../share/parley/bot", dir);
    free(dir);
    if (has_manifest(installed)) return installed;
    free(installed);
    return NULL;
}
