/* metrics: the process's counters, gauges and histograms, and their text in
 * Prometheus's exposition format (version 0.0.4) for GET /metrics.
 *
 * A family is made once by name (the same call again returns it) and lives
 * as long as the process; its series are told apart by the values of its
 * labels, given in the order the family named them. Every floor may count:
 * this file uses nothing but the C library. Families are thread-safe (turns
 * run on turn threads): one mutex a family, held for a lookup among its
 * series and an add; a series is allocated the first time its label values
 * are seen, never again. A label's values must come from a small fixed set
 * (bot and channel names, route names, never a path or a user): each
 * family keeps at most PL_METRIC_MAX_SERIES series and drops what comes
 * beyond, with one warning.
 *
 * What its owner knows only when asked (an outbox's depth, a store's size)
 * is a family read at scrape time: pl_metric_reader's function writes its
 * samples while the text is made, on the thread that makes it. */
#ifndef PL_METRICS_H
#define PL_METRICS_H

#include <stddef.h>

typedef enum { PL_METRIC_COUNTER, PL_METRIC_GAUGE, PL_METRIC_HISTOGRAM } pl_metric_type;

#define PL_METRIC_MAX_LABELS 4
#define PL_METRIC_MAX_SERIES 2000

typedef struct pl_metric pl_metric;

/* The family called name (a counter's ends in _total), made the first time
 * (help: one line for # HELP; labels: their names separated by commas, ""
 * for none). A name made before with another type or labels is a bug of
 * the caller's: it aborts. */
pl_metric *pl_metric_counter(const char *name, const char *help, const char *labels);
pl_metric *pl_metric_gauge(const char *name, const char *help, const char *labels);
/* bounds: the upper bounds of its buckets, ascending (+Inf is added);
 * copied. */
pl_metric *pl_metric_histogram(const char *name, const char *help, const char *labels, const double *bounds,
                               size_t nbounds);

/* Bucket bounds for durations in seconds (1 ms to 10 s) and for counts of
 * things a batch holds (1 to 512). */
extern const double pl_metric_seconds[];
extern const size_t pl_metric_seconds_count;
extern const double pl_metric_sizes[];
extern const size_t pl_metric_sizes_count;

/* values: one string a label, in the family's order (NULL when it has no
 * labels), borrowed; e.g. (const char *[]){bot, channel}. */
void pl_metric_add(pl_metric *m, const char *const *values, double n); /* a counter (n >= 0) or a gauge */
void pl_metric_set(pl_metric *m, const char *const *values, double v); /* a gauge */
void pl_metric_observe(pl_metric *m, const char *const *values, double x); /* a histogram */

/* --- families read at scrape time ----------------------------------------- */

typedef struct pl_metric_out pl_metric_out;
typedef struct pl_metric_reader pl_metric_reader;

/* Writes the family's samples with pl_metric_sample. */
typedef void (*pl_metric_read_fn)(pl_metric_out *out, void *ud);
void pl_metric_sample(pl_metric_out *out, const char *const *values, double v);

/* A counter or gauge whose samples fn writes each time the text is made
 * (several readers may share a name: their samples join one family).
 * Remove it before what ud points to goes. */
pl_metric_reader *pl_metric_reader_add(const char *name, const char *help, pl_metric_type type, const char *labels,
                                       pl_metric_read_fn fn, void *ud);
void pl_metric_reader_remove(pl_metric_reader *reader);

/* --- the text ----------------------------------------------------------------- */

/* Every family, sorted by name, in the text format (new string; *len its
 * length when len is not NULL). Readers run on the calling thread. */
char *pl_metrics_text(size_t *len);

/* The content type of that text. */
#define PL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
