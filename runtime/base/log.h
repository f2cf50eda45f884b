/* log: the one log stream of a parley process.
 *
 * Lines go to stderr as "TIME LEVEL message". A sink can be added (parley
 * chat shows warnings and errors in the conversation) and tests read the
 * stream to assert on what was logged. */
#ifndef PL_LOG_H
#define PL_LOG_H

typedef enum { PL_LOG_DEBUG, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR } pl_log_level;

typedef void (*pl_log_sink)(pl_log_level level, const char *line, void *ud);

void pl_log_set_level(pl_log_level level);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int pl_log_parse_level(const char *name);
/* Lines at or above `level` also go to sink; NULL removes it. When quiet is
 * set, stderr gets nothing (the sink alone sees the lines). */
void pl_log_set_sink(pl_log_sink sink, void *ud, int quiet);

void pl_log(pl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pl_debug(...) pl_log(PL_LOG_DEBUG, __VA_ARGS__)
#define pl_info(...) pl_log(PL_LOG_INFO, __VA_ARGS__)
#define pl_warn(...) pl_log(PL_LOG_WARN, __VA_ARGS__)
#define pl_error(...) pl_log(PL_LOG_ERROR, __VA_ARGS__)

#endif
