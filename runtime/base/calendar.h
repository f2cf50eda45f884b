/* calendar: days in a time zone (an IANA name such as "Europe/Madrid"),
 * with ICU's calendar, for figures counted per day in a bot's time zone.
 * Dates are "YYYY-MM-DD". */
#ifndef PL_CALENDAR_H
#define PL_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

/* 1 when zone names a time zone ICU knows ("UTC", "America/Sao_Paulo"). */
int pl_calendar_zone_known(const char *zone);

/* A run of whole days: day i is names[i] and lasts from starts[i] to
 * starts[i + 1] (UTC milliseconds; a day of a daylight-saving change lasts
 * 23 or 25 hours). */
typedef struct {
    size_t n;
    int64_t *starts;  /* n + 1 */
    char (*names)[11];
} pl_calendar_days;

/* The days from..to (both included) in zone, at most max_days of them;
 * PL_ERR with a reason for a malformed date, a range backwards or too long,
 * or an unknown zone. */
int pl_calendar_days_of(const char *zone, const char *from, const char *to, size_t max_days, pl_calendar_days *out,
                        char **err);
void pl_calendar_days_free(pl_calendar_days *days);
/* The day that holds ms (an index into days), or days->n when none does. */
size_t pl_calendar_day_index(const pl_calendar_days *days, int64_t ms);
/* The date in zone at ms ("YYYY-MM-DD" into out); PL_ERR for an unknown zone. */
int pl_calendar_date_at(const char *zone, int64_t ms, char out[11]);

#endif
