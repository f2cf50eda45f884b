/* log: formats and writes log lines; see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static pl_log_level min_level = PL_LOG_INFO;
static pl_log_sink sink_fn;
static void *sink_ud;
static int stderr_quiet;
/* turn threads log too: one sink call at a time */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void pl_log_set_level(pl_log_level level) { min_level = level; }

int pl_log_parse_level(const char *name) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

void pl_log_set_sink(pl_log_sink sink, void *ud, int quiet) {
    sink_fn = sink;
    sink_ud = ud;
    stderr_quiet = sink ? quiet : 0;
}

void pl_log(pl_log_level level, const char *fmt, ...) {
    if (level < min_level) return;
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (!stderr_quiet) {
        char stamp[40];
        pl_format_time(pl_now_ms(), stamp, sizeof stamp);
        fprintf(stderr, "%s %-5s %s\n", stamp, level_names[level], message);
        fflush(stderr);
    }
    if (sink_fn) {
        pthread_mutex_lock(&sink_lock);
        sink_fn(level, message, sink_ud);
        pthread_mutex_unlock(&sink_lock);
    }
}
