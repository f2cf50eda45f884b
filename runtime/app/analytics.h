/* analytics: the shop's figures, counted from the events turns recorded
 * (store.h, pl_store_events_*; what each event means: docs/analytics.md).
 *
 * The figures of a bot over whole days in its time zone, optionally of one
 * channel and one locale: the funnel (conversations -> engaged -> product
 * shown -> cart -> checkout -> paid), revenue and orders per currency,
 * refunds, abandoned-cart reminders and the carts they recovered, drop-off
 * by flow step, what the bot did not understand, recommendations shown and
 * taken, handoffs, errors, the bot's own events, and the same per day.
 *
 * A conversation counts on the day it started; payments, refunds and
 * reminders on the day they happened. Days whose events retention let go
 * of are counted from the day aggregates kept of them (pl_analytics_roll_up). Reads go through the store only, so
 * the work can run on the store's read thread (pl_store_offload_read). */
#ifndef PL_ANALYTICS_H
#define PL_ANALYTICS_H

#include <jansson.h>
#include <stdint.h>

#include "store/store.h"

/* The longest range one request may ask for. */
#define PL_ANALYTICS_MAX_DAYS 400
/* Distinct not-understood messages counted one by one (the rest count in
 * "other"), and how many the figures list. */
#define PL_ANALYTICS_MAX_TEXTS 10000
#define PL_ANALYTICS_TOP_TEXTS 20
/* Distinct events of a bot's own counted by name (the rest count as
 * "(other)"). */
#define PL_ANALYTICS_MAX_CUSTOM 200
/* A conversation without a turn for this long is summed up and forgotten
 * during the pass, which so holds a week of conversations at most, whatever
 * the range (a payment that comes later still counts as revenue, not in
 * that conversation's funnel). */
#ifndef PL_ANALYTICS_FORGET_MS
#define PL_ANALYTICS_FORGET_MS (7LL * 24 * 3600 * 1000)
#endif

typedef struct {
    const char *bot;
    const char *time_zone; /* an IANA name; NULL: UTC */
    const char *from, *to; /* "YYYY-MM-DD", both included */
    const char *channel;   /* NULL: every channel */
    const char *locale;    /* NULL: every locale */
    int64_t quiet_ms;      /* a conversation this long without a word went quiet (drop-off) */
    int64_t now_ms;
} pl_analytics_query;

/* A row's events in order, each {"name", "props"?} (a new array): names
 * (" message step reply ") lists them all, list (JSON) those that carry
 * props, in the same order; a "step" event's props are {"step": step},
 * the row's. */
json_t *pl_analytics_row_events(const char *names, const char *list, const char *step);

/* The figures (a new object, see docs/analytics.md), or PL_ERR with a reason
 * for the caller (a bad date or range: *bad_request is 1) or from the store. */
int pl_analytics_figures(pl_store *store, const pl_analytics_query *q, json_t **figures, int *bad_request,
                         char **err);

/* Keeps the figures of the earliest day of the bot's events before
 * before_ms (days in time_zone; the whole day, also its events after
 * before_ms) as day aggregates, per channel and locale, added to what was
 * kept of that day, then forgets those events: in two phases, so that the
 * long part runs where nothing waits for it. The read phase only reads (a
 * read connection will do: pl_store_offload_read) and sets *day (NULL:
 * nothing before before_ms); the write phase keeps it and forgets the
 * events in one transaction, *turns counting them. Retention calls them
 * day by day before it purges the transcripts (docs/analytics.md). */
typedef struct pl_analytics_day pl_analytics_day;
int pl_analytics_roll_up_read(pl_store *store, const char *bot, const char *time_zone, int64_t quiet_ms,
                              int64_t before_ms, pl_analytics_day **day, char **err);
int pl_analytics_roll_up_write(pl_store *store, const pl_analytics_day *day, int64_t *turns, char **err);
void pl_analytics_day_free(pl_analytics_day *day);
/* Both phases at once, on one store. */
int pl_analytics_roll_up(pl_store *store, const char *bot, const char *time_zone, int64_t quiet_ms,
                         int64_t before_ms, int64_t *turns, char **err);

#endif
