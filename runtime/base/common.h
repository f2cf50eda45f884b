/* common: the return codes, string helpers and clock every subsystem shares.
 *
 * C functions in parley return PL_OK, PL_ERR or PL_AGAIN ("in flight: the
 * coroutine must yield"). A failure's message goes through a `char **err`
 * out-parameter that the caller owns and frees. */
#ifndef PL_COMMON_H
#define PL_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define PL_OK 0
#define PL_ERR (-1)
#define PL_AGAIN 1

/* A new string formatted like printf; aborts on out-of-memory (there is no
 * sensible way to go on without a few bytes for a message). */
char *pl_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *pl_vstrdupf(const char *fmt, va_list ap);
char *pl_strdup(const char *s);
char *pl_strndup(const char *s, size_t n);

/* Sets *err (when err is not NULL) to a new formatted message; returns PL_ERR
 * so a failing path can `return pl_fail(err, "...")`. */
int pl_fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Wall-clock milliseconds since the epoch. Tests may shift it (see
 * pl_clock_advance) so that nothing ever sleeps to wait for time to pass. */
int64_t pl_now_ms(void);
void pl_clock_advance(int64_t ms);

/* Monotonic microseconds, for measuring durations. */
int64_t pl_monotonic_us(void);
/* Microseconds of CPU the calling thread has used (not while it waited). */
int64_t pl_cpu_us(void);

/* Formats a millisecond timestamp as RFC 3339 UTC into buf (>= 32 bytes). */
void pl_format_time(int64_t ms, char *buf, size_t size);

/* Reads a whole file into a new NUL-terminated buffer. */
int pl_read_file(const char *path, char **out, size_t *len, char **err);

/* Starts a helper thread (the sync thread, the store's thread) that takes
 * no signals: the loop's and the budget timer's stay on the threads that
 * handle them. pthread_create's result. */
int pl_thread_start_quiet(pthread_t *thread, void *(*main)(void *), void *arg);

#endif
