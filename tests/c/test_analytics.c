/* test_analytics: days in a time zone (base/calendar.h) and the figures
 * counted from event rows (app/analytics.h), on a store in memory: the
 * funnel's nesting, money per currency, drop-off by step, not-understood
 * texts, handoff medians, filters, and days across a daylight-saving
 * change. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "app/analytics.h"
#include "base/calendar.h"
#include "base/common.h"
#include "check.h"
#include "store/store.h"

#define MIN 60000LL
#define HOUR (60 * MIN)

/* 2026-06-01T00:00:00Z */
static const int64_t june_1 = 1780272000000LL;

TEST(days_in_a_zone) {
    pl_calendar_days days;
    char *err = NULL;
    CHECK(pl_calendar_days_of("UTC", "2026-06-01", "2026-06-03", 10, &days, &err) == PL_OK);
    CHECK(days.n == 3);
    CHECK(days.starts[0] == june_1);
    CHECK(days.starts[3] == june_1 + 72 * HOUR);
    CHECK_STR(days.names[2], "2026-06-03");
    CHECK(pl_calendar_day_index(&days, june_1 + 25 * HOUR) == 1);
    CHECK(pl_calendar_day_index(&days, june_1 - 1) == 3);
    CHECK(pl_calendar_day_index(&days, june_1 + 72 * HOUR) == 3);
    pl_calendar_days_free(&days);
    /* Madrid: midnight is 22:00 UTC in summer; the day clocks go forward
     * (2026-03-29) lasts 23 hours, the day they go back (2026-10-25) 25 */
    CHECK(pl_calendar_days_of("Europe/Madrid", "2026-03-28", "2026-03-30", 10, &days, &err) == PL_OK);
    CHECK(days.starts[1] - days.starts[0] == 24 * HOUR);
    CHECK(days.starts[2] - days.starts[1] == 23 * HOUR);
    pl_calendar_days_free(&days);
    CHECK(pl_calendar_days_of("Europe/Madrid", "2026-10-25", "2026-10-25", 10, &days, &err) == PL_OK);
    CHECK(days.starts[1] - days.starts[0] == 25 * HOUR);
    pl_calendar_days_free(&days);
    /* Santiago: on 2026-09-06 midnight does not exist (00:00 is 01:00): that
     * day lasts 23 hours, and the next begins at midnight again */
    CHECK(pl_calendar_days_of("America/Santiago", "2026-09-05", "2026-09-08", 10, &days, &err) == PL_OK);
    CHECK(days.starts[1] - days.starts[0] == 24 * HOUR);
    CHECK(days.starts[2] - days.starts[1] == 23 * HOUR);
    CHECK(days.starts[3] - days.starts[2] == 24 * HOUR);
    CHECK(days.starts[4] - days.starts[3] == 24 * HOUR);
    pl_calendar_days_free(&days);
    char date[11];
    CHECK(pl_calendar_date_at("Europe/Madrid", june_1 - 2 * HOUR + 1, date) == PL_OK);
    CHECK_STR(date, "2026-06-01");
    CHECK(pl_calendar_date_at("America/Sao_Paulo", june_1 + 2 * HOUR, date) == PL_OK);
    CHECK_STR(date, "2026-05-31");
}

TEST(bad_ranges) {
    pl_calendar_days days;
    char *err = NULL;
    static const char *const bad[][3] = {
        {"UTC", "2026-02-29", "2026-03-01"}, /* not a leap year */
        {"UTC", "2026-3-01", "2026-03-02"},  {"UTC", "2026-03-02", "2026-03-01"},
        {"Mars/Olympus", "2026-03-01", "2026-03-02"}, {"UTC", "2026-03-01x", "2026-03-02"},
        {"UTC", "2020-01-01", "2026-01-01"}, /* longer than 10 days */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(pl_calendar_days_of(bad[i][0], bad[i][1], bad[i][2], 10, &days, &err) == PL_ERR);
        CHECK(err != NULL);
        free(err);
        err = NULL;
    }
    CHECK(pl_calendar_days_of("UTC", "2024-02-29", "2024-02-29", 10, &days, &err) == PL_OK);
    pl_calendar_days_free(&days);
    CHECK(pl_calendar_zone_known("America/Sao_Paulo"));
    CHECK(!pl_calendar_zone_known("Not/AZone"));
    CHECK(!pl_calendar_zone_known(NULL));
}

/* One turn's row (its events kept with its transcript lines). */
static void add_to(pl_store *store, const char *bot, const char *channel, const char *user, int64_t conv, int64_t at,
                   const char *locale, const char *step, const char *names, const char *list) {
    pl_session_key key = {bot, channel, user};
    pl_store_events row = {conv, locale, step, names, list};
    char *err = NULL;
    CHECK(pl_store_transcript_add_turn(store, &key, "{\"text\":\"x\"}", at, "[]", at + 1, &row, &err) == PL_OK);
    free(err);
}

static void add(pl_store *store, const char *channel, const char *user, int64_t conv, int64_t at, const char *locale,
                const char *step, const char *names, const char *list) {
    add_to(store, "shop", channel, user, conv, at, locale, step, names, list);
}

static pl_store *sample_store(void) {
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(":memory:", PL_SYNC_NORMAL, &store, &err) == PL_OK);
    int64_t t = june_1 + 10 * HOUR;
    /* ann: shown, cart, checkout, paid €7.20 */
    add(store, "rest", "ann", 1, t, "en", "drink.choose", " conversation_started message product_shown ",
        "[{\"name\":\"conversation_started\"},{\"name\":\"message\"},{\"name\":\"product_shown\",\"props\":{\"skus\":[\"latte\"]}}]");
    add(store, "rest", "ann", 1, t + MIN, "en", "main.checkout", " message cart_add checkout_started ",
        "[{\"name\":\"message\"},{\"name\":\"cart_add\",\"props\":{\"sku\":\"latte\",\"recommended\":true}},"
        "{\"name\":\"checkout_started\"}]");
    add(store, "rest", "ann", 1, t + 2 * MIN, "en", NULL, " payment_paid ",
        "[{\"name\":\"payment_paid\",\"props\":{\"total\":720,\"currency\":\"EUR\"}}]");
    /* bob (Japanese, web chat): paid ¥500 but only one message: not engaged,
     * so the funnel stops there for him */
    add(store, "webchat", "bob", 1, t, "ja", "drink.choose", " conversation_started message product_shown payment_paid ",
        "[{\"name\":\"conversation_started\"},{\"name\":\"message\"},{\"name\":\"product_shown\",\"props\":{\"skus\":[\"tea\"],\"recommended\":true}},"
        "{\"name\":\"payment_paid\",\"props\":{\"total\":500,\"currency\":\"JPY\"}}]");
    /* cy: not understood twice at the size, then gone quiet; a handoff
     * claimed after 60 s and closed after 600 s */
    add(store, "rest", "cy", 1, t, "en", "drink.size",
        " conversation_started message not_understood handoff_requested ",
        "[{\"name\":\"conversation_started\"},{\"name\":\"message\"},{\"name\":\"not_understood\",\"props\":{\"text\":\"grande please\"}},"
        "{\"name\":\"handoff_requested\"}]");
    add(store, "rest", "cy", 1, t + MIN, "en", "drink.size", " message not_understood handoff_claimed ",
        "[{\"name\":\"message\"},{\"name\":\"not_understood\",\"props\":{\"text\":\"grande please\"}},"
        "{\"name\":\"handoff_claimed\",\"props\":{\"wait_s\":60}}]");
    add(store, "rest", "cy", 1, t + 2 * MIN, "en", "drink.size", " handoff_closed vip_seen vip_seen ",
        "[{\"name\":\"handoff_closed\",\"props\":{\"duration_s\":600}},{\"name\":\"vip_seen\"},{\"name\":\"vip_seen\"}]");
    /* ann again, the next day: a new conversation, a refund of €7.20 */
    add(store, "rest", "ann", 2, t + 24 * HOUR, "en", NULL, " conversation_started message payment_refunded ",
        "[{\"name\":\"conversation_started\"},{\"name\":\"message\"},{\"name\":\"payment_refunded\",\"props\":{\"total\":720,\"currency\":\"EUR\"}}]");
    /* another bot's row: never counted */
    add_to(store, "other", "rest", "zed", 1, t, "en", "x.y", " conversation_started message ", "[]");
    return store;
}

static json_t *figures_of(pl_store *store, const char *channel, const char *locale) {
    pl_analytics_query q = {.bot = "shop", .time_zone = "UTC", .from = "2026-06-01", .to = "2026-06-02",
                            .channel = channel, .locale = locale, .quiet_ms = 30 * MIN,
                            .now_ms = june_1 + 40 * HOUR};
    json_t *f = NULL;
    int bad = 0;
    char *err = NULL;
    CHECK(pl_analytics_figures(store, &q, &f, &bad, &err) == PL_OK);
    free(err);
    return f;
}

static json_int_t count_at(const json_t *list, size_t i) {
    return json_integer_value(json_object_get(json_array_get(list, i), "count"));
}

TEST(figures) {
    pl_store *store = sample_store();
    json_t *f = figures_of(store, NULL, NULL);
    json_t *funnel = json_object_get(f, "funnel");
    /* conversations: ann 1, bob, cy, ann 2; engaged: ann 1, cy; shown: ann 1 */
    json_int_t want[] = {4, 2, 1, 1, 1, 1};
    for (size_t i = 0; i < 6; i++) CHECK(count_at(funnel, i) == want[i]);
    CHECK(json_real_value(json_object_get(json_array_get(funnel, 1), "rate")) == 0.5);
    /* money per currency, with the refund beside it */
    json_t *revenue = json_object_get(f, "revenue");
    CHECK(json_array_size(revenue) == 2);
    json_t *eur = json_array_get(revenue, 0), *jpy = json_array_get(revenue, 1);
    CHECK_STR(json_string_value(json_object_get(eur, "currency")), "EUR");
    CHECK(json_integer_value(json_object_get(eur, "amount")) == 720);
    CHECK(json_integer_value(json_object_get(eur, "refunded")) == 720);
    CHECK(json_integer_value(json_object_get(eur, "refunds")) == 1);
    CHECK(json_integer_value(json_object_get(jpy, "amount")) == 500);
    /* cy went quiet at the size, not paid; ann's second and bob have no step */
    json_t *drop = json_array_get(json_object_get(f, "drop_off"), 0);
    CHECK(json_array_size(json_object_get(f, "drop_off")) == 1);
    CHECK_STR(json_string_value(json_object_get(drop, "step")), "drink.size");
    CHECK(json_integer_value(json_object_get(drop, "dropped")) == 1);
    CHECK(json_integer_value(json_object_get(drop, "reached")) == 1);
    /* not understood: 2 of 6 messages, one text twice */
    json_t *nu = json_object_get(f, "not_understood");
    CHECK(json_integer_value(json_object_get(nu, "turns")) == 6);
    CHECK(json_integer_value(json_object_get(nu, "count")) == 2);
    json_t *top = json_array_get(json_object_get(nu, "top"), 0);
    CHECK_STR(json_string_value(json_object_get(top, "text")), "grande please");
    CHECK(json_integer_value(json_object_get(top, "count")) == 2);
    json_t *rec = json_object_get(f, "recommendations");
    CHECK(json_integer_value(json_object_get(rec, "shown")) == 1);
    CHECK(json_integer_value(json_object_get(rec, "taken")) == 1);
    json_t *h = json_object_get(f, "handoff");
    CHECK(json_integer_value(json_object_get(h, "median_claim_s")) == 60);
    CHECK(json_integer_value(json_object_get(h, "median_close_s")) == 600);
    /* the bot's own event, counted twice in one turn */
    json_t *custom = json_array_get(json_object_get(f, "custom"), 0);
    CHECK_STR(json_string_value(json_object_get(custom, "name")), "vip_seen");
    CHECK(json_integer_value(json_object_get(custom, "count")) == 2);
    /* per day */
    json_t *days = json_object_get(f, "days");
    CHECK(json_array_size(days) == 2);
    CHECK(json_integer_value(json_object_get(json_array_get(days, 0), "conversations")) == 3);
    CHECK(json_integer_value(json_object_get(json_array_get(days, 1), "conversations")) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(days, 0), "orders")) == 2);
    json_decref(f);

    /* one channel, one locale */
    f = figures_of(store, "webchat", NULL);
    CHECK(count_at(json_object_get(f, "funnel"), 0) == 1);
    json_decref(f);
    f = figures_of(store, NULL, "en");
    CHECK(count_at(json_object_get(f, "funnel"), 0) == 3);
    json_decref(f);
    pl_store_close(store);
}

TEST(a_range_refused) {
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(":memory:", PL_SYNC_NORMAL, &store, &err) == PL_OK);
    pl_analytics_query q = {.bot = "shop", .time_zone = "Mars/Olympus", .from = "2026-06-01", .to = "2026-06-02"};
    json_t *f = NULL;
    int bad = 0;
    CHECK(pl_analytics_figures(store, &q, &f, &bad, &err) == PL_ERR);
    CHECK(bad == 1 && f == NULL && err && strstr(err, "time zone"));
    free(err);
    pl_store_close(store);
}

/* What retention keeps: rolling up a day changes no figure but the
 * not-understood texts (said by shoppers) and the medians of that day. */
TEST(rolled_up_days_count_the_same) {
    pl_store *store = sample_store();
    json_t *before = figures_of(store, NULL, NULL), *before_en = figures_of(store, NULL, "en");
    int64_t turns = 0;
    char *err = NULL;
    /* the first day (2026-06-01, all of it), then nothing more before the cut */
    int64_t cut = june_1 + 24 * HOUR;
    CHECK(pl_analytics_roll_up(store, "shop", "UTC", 30 * MIN, cut, &turns, &err) == PL_OK);
    CHECK(turns == 7); /* ann 3, bob 1, cy 3 */
    CHECK(pl_analytics_roll_up(store, "shop", "UTC", 30 * MIN, cut, &turns, &err) == PL_OK);
    CHECK(turns == 0);
    json_t *rows = NULL;
    pl_store_events_query all = {.bot = "shop", .from_ms = INT64_MIN, .to_ms = INT64_MAX, .after_at = INT64_MIN,
                                 .limit = 100};
    CHECK(pl_store_events_read(store, &all, &rows, &err) == PL_OK);
    CHECK(json_array_size(rows) == 1); /* the second day's */
    json_decref(rows);
    json_t *kept = NULL;
    CHECK(pl_store_analytics_days_read(store, "shop", "2026-06-01", "2026-06-01", NULL, NULL, &kept, &err) == PL_OK);
    CHECK(json_array_size(kept) == 2); /* rest/en (ann and cy), webchat/ja (bob) */
    char *kept_text = json_dumps(kept, JSON_COMPACT);
    CHECK(kept_text && !strstr(kept_text, "grande") && !strstr(kept_text, "\"ann\"") && !strstr(kept_text, "median"));
    free(kept_text);
    json_decref(kept);
    json_t *after = figures_of(store, NULL, NULL), *after_en = figures_of(store, NULL, "en");
    static const char *const same[] = {"funnel", "revenue", "reminders", "drop_off", "recommendations", "channels",
                                       "errors", "custom", "days"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        CHECK(json_equal(json_object_get(before, same[i]), json_object_get(after, same[i])));
        CHECK(json_equal(json_object_get(before_en, same[i]), json_object_get(after_en, same[i])));
        if (!json_equal(json_object_get(before, same[i]), json_object_get(after, same[i]))) {
            char *a = json_dumps(json_object_get(before, same[i]), JSON_COMPACT);
            char *b = json_dumps(json_object_get(after, same[i]), JSON_COMPACT);
            printf("#   %s: %s != %s\n", same[i], a, b);
            free(a);
            free(b);
        }
    }
    json_t *nu = json_object_get(after, "not_understood");
    CHECK(json_integer_value(json_object_get(nu, "count")) == 2);
    CHECK(json_array_size(json_object_get(nu, "top")) == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(after, "handoff"), "claimed")) == 1);
    json_decref(before);
    json_decref(after);
    json_decref(before_en);
    json_decref(after_en);
    free(err);
    pl_store_close(store);
}

int main(void) {
    RUN(days_in_a_zone);
    RUN(bad_ranges);
    RUN(figures);
    RUN(rolled_up_days_count_the_same);
    RUN(a_range_refused);
    return check_done();
}
