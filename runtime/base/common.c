/* common: string helpers, the clock and whole-file reads shared by every
 * subsystem. See common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the test clock's: read by every thread (the store's, the turn threads) */
static _Atomic int64_t clock_offset_ms;

char *pl_vstrdupf(const char *fmt, va_list ap) {
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) abort();
    return s;
}

char *pl_strdupf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = pl_vstrdupf(fmt, ap);
    va_end(ap);
    return s;
}

char *pl_strdup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) abort();
    return d;
}

char *pl_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) abort();
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int pl_fail(char **err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        free(*err);
        *err = pl_vstrdupf(fmt, ap);
        va_end(ap);
    }
    return PL_ERR;
}

int64_t pl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load_explicit(&clock_offset_ms, memory_order_relaxed);
}

void pl_clock_advance(int64_t ms) { atomic_fetch_add(&clock_offset_ms, ms); }

int64_t pl_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pl_cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pl_format_time(int64_t ms, char *buf, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", base, (int)(ms % 1000));
}

int pl_read_file(const char *path, char **out, size_t *len, char **err) {
    FILE *f = fopen(path, "rb");
    if (!f) return pl_fail(err, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (!grown) abort();
            buf = grown;
        }
        size_t n = fread(buf + size, 1, cap - size - 1, f);
        size += n;
        if (n == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return pl_fail(err, "%s: read error", path);
    }
    buf[size] = '\0';
    *out = buf;
    if (len) *len = size;
    return PL_OK;
}

int pl_thread_start_quiet(pthread_t *thread, void *(*main)(void *), void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(thread, NULL, main, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
