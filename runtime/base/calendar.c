/* calendar: days in a time zone, through ICU's ucal; see calendar.h. */
#include "calendar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "common.h"

#define ZONE_MAX 64

/* A Gregorian calendar in zone (NULL for a name ICU does not know: ucal
 * would quietly fall back to GMT). */
static UCalendar *calendar_in(const char *zone) {
    if (!zone || strlen(zone) >= ZONE_MAX) return NULL;
    UChar id[ZONE_MAX], canonical[ZONE_MAX];
    u_uastrcpy(id, zone);
    UErrorCode e = U_ZERO_ERROR;
    ucal_getCanonicalTimeZoneID(id, -1, canonical, ZONE_MAX, NULL, &e);
    if (U_FAILURE(e)) return NULL;
    UCalendar *cal = ucal_open(id, -1, "en_US_POSIX", UCAL_GREGORIAN, &e);
    if (U_FAILURE(e)) return NULL;
    return cal;
}

int pl_calendar_zone_known(const char *zone) {
    UCalendar *cal = calendar_in(zone);
    ucal_close(cal);
    return cal != NULL;
}

/* "YYYY-MM-DD" with a real month and day (checked against the calendar). */
static int parse_date(const char *text, int *y, int *m, int *d) {
    int used = 0;
    if (!text || strlen(text) != 10 || sscanf(text, "%4d-%2d-%2d%n", y, m, d, &used) != 3 || used != 10) return 0;
    if (*y < 1970 || *y > 9999 || *m < 1 || *m > 12 || *d < 1) return 0;
    static const int days_in[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
    return *d <= days_in[*m - 1] - (*m == 2 && !leap);
}

static void name_of(UCalendar *cal, char out[11]) {
    UErrorCode e = U_ZERO_ERROR;
    unsigned y = (unsigned)ucal_get(cal, UCAL_YEAR, &e) % 10000u, m = (unsigned)(ucal_get(cal, UCAL_MONTH, &e) + 1) % 100u,
             d = (unsigned)ucal_get(cal, UCAL_DATE, &e) % 100u;
    char text[32];
    snprintf(text, sizeof text, "%04u-%02u-%02u", y, m, d);
    memcpy(out, text, 10);
    out[10] = '\0';
}

int pl_calendar_days_of(const char *zone, const char *from, const char *to, size_t max_days, pl_calendar_days *out,
                        char **err) {
    memset(out, 0, sizeof *out);
    int fy, fm, fd, ty, tm, td;
    if (!parse_date(from, &fy, &fm, &fd)) return pl_fail(err, "from is a date YYYY-MM-DD");
    if (!parse_date(to, &ty, &tm, &td)) return pl_fail(err, "to is a date YYYY-MM-DD");
    if (strcmp(from, to) > 0) return pl_fail(err, "from (%s) is after to (%s)", from, to);
    UCalendar *cal = calendar_in(zone);
    if (!cal) return pl_fail(err, "unknown time zone '%s'", zone ? zone : "");
    out->starts = calloc(max_days + 1, sizeof *out->starts);
    out->names = calloc(max_days, sizeof *out->names);
    if (!out->starts || !out->names) abort();
    UErrorCode e = U_ZERO_ERROR;
    ucal_clear(cal);
    ucal_setDateTime(cal, fy, fm - 1, fd, 0, 0, 0, &e);
    size_t n = 0;
    for (;;) {
        char name[11];
        name_of(cal, name);
        if (strcmp(name, to) > 0) break;
        if (n == max_days) {
            ucal_close(cal);
            pl_calendar_days_free(out);
            return pl_fail(err, "a range is at most %zu days", max_days);
        }
        out->starts[n] = (int64_t)ucal_getMillis(cal, &e);
        memcpy(out->names[n++], name, 11);
        /* the next day's midnight: set again, as adding a day keeps the
         * time of day, which a day whose midnight did not exist (a clock
         * moved forward at 00:00) made 01:00 */
        ucal_add(cal, UCAL_DATE, 1, &e);
        ucal_set(cal, UCAL_HOUR_OF_DAY, 0);
        ucal_set(cal, UCAL_MINUTE, 0);
        ucal_set(cal, UCAL_SECOND, 0);
        ucal_set(cal, UCAL_MILLISECOND, 0);
    }
    out->starts[n] = (int64_t)ucal_getMillis(cal, &e);
    out->n = n;
    ucal_close(cal);
    if (U_FAILURE(e)) {
        pl_calendar_days_free(out);
        return pl_fail(err, "the calendar failed: %s", u_errorName(e));
    }
    return PL_OK;
}

void pl_calendar_days_free(pl_calendar_days *days) {
    free(days->starts);
    free(days->names);
    memset(days, 0, sizeof *days);
}

size_t pl_calendar_day_index(const pl_calendar_days *days, int64_t ms) {
    if (days->n == 0 || ms < days->starts[0] || ms >= days->starts[days->n]) return days->n;
    size_t lo = 0, hi = days->n; /* starts[lo] <= ms < starts[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (days->starts[mid] <= ms) lo = mid;
        else hi = mid;
    }
    return lo;
}

int pl_calendar_date_at(const char *zone, int64_t ms, char out[11]) {
    UCalendar *cal = calendar_in(zone);
    if (!cal) return PL_ERR;
    UErrorCode e = U_ZERO_ERROR;
    ucal_setMillis(cal, (UDate)ms, &e);
    name_of(cal, out);
    ucal_close(cal);
    return U_FAILURE(e) ? PL_ERR : PL_OK;
}
