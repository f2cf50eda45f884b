/* replay.c: the plain driver of a fuzz target, for `make test`: built with
 * gcc under ASan/UBSan (no clang, no libFuzzer), it feeds every file of the
 * given corpus folders to LLVMFuzzerTestOneInput and prints one TAP line
 * for the target, naming each file that failed.
 *
 *   build/fuzz/replay_NAME NAME tests/fuzz/corpus/NAME [more folders]
 *
 * Each file runs in a child process of its own, so a crash, a sanitizer
 * report, a leak (checked when the input is done) or a hang (10 s) fails
 * that file and the replay goes on; files run in name order. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define HANG_SECONDS 10

/* Runs one input in this (child) process; the exit status says how it went. */
static void run_one(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) _exit(3);
    struct stat st;
    size_t size = fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : 0;
    /* exactly size bytes, so the sanitizer sees a read past the input */
    uint8_t *data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != size) _exit(3);
    fclose(f);
    alarm(HANG_SECONDS);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
#if defined(__SANITIZE_ADDRESS__)
    if (__lsan_do_recoverable_leak_check()) _exit(4);
#endif
    _exit(0);
}

/* "" when path ran cleanly, else what went wrong (static). */
static const char *replay(const char *path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return "cannot fork";
    if (pid == 0) run_one(path);
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return "lost its child process";
    static char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, WTERMSIG(status) == SIGALRM ? "hung (over %d s)" : "crashed (signal %d)",
                 WTERMSIG(status) == SIGALRM ? HANG_SECONDS : WTERMSIG(status));
    else if (WEXITSTATUS(status) == 3) snprintf(why, sizeof why, "cannot be read");
    else if (WEXITSTATUS(status) == 4) snprintf(why, sizeof why, "leaks memory");
    else if (WEXITSTATUS(status) != 0) snprintf(why, sizeof why, "failed (exit %d: a sanitizer report)", WEXITSTATUS(status));
    else why[0] = '\0';
    return why;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The regular files of dir, sorted (new array of new strings); *n their count. */
static char **files_of(const char *dir, size_t *n) {
    DIR *d = opendir(dir);
    char **names = NULL;
    *n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *path = NULL;
        struct stat st;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) abort();
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        names = realloc(names, (*n + 1) * sizeof *names);
        if (!names) abort();
        names[(*n)++] = path;
    }
    if (d) closedir(d);
    if (*n) qsort(names, *n, sizeof *names, by_name);
    return names;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    size_t total = 0, failed = 0;
    char failures[2048] = "";
    for (int i = 2; i < argc; i++) {
        size_t n = 0;
        char **files = files_of(argv[i], &n);
        for (size_t k = 0; k < n; k++) {
            const char *why = replay(files[k]);
            total++;
            if (*why) {
                failed++;
                printf("# %s %s\n", files[k], why);
                size_t used = strlen(failures);
                snprintf(failures + used, sizeof failures - used, "%s%s %s", failed > 1 ? "; " : "", files[k], why);
            }
            free(files[k]);
        }
        free(files);
    }
    if (total == 0) printf("not ok - %s: no corpus files in %s\n", argv[1], argv[2]);
    else if (failed) printf("not ok - %s: %zu of %zu corpus files failed: %s\n", argv[1], failed, total, failures);
    else printf("ok - %s: %zu corpus files replayed\n", argv[1], total);
    return total == 0 || failed ? 1 : 0;
}
