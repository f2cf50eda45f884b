/* test_metrics: base/metrics.c — the text format of counters, gauges,
 * histograms and readers (sorted by name, # HELP and # TYPE once a name,
 * label values escaped, numbers spelled the format's way), series made
 * once, counts from several threads, and the cap on series. Every family
 * here is this test's: nothing else in the process makes any. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "check.h"

/* The lines of the text about one family (those naming it, heads
 * included), joined with \n (new). */
static char *lines_of(const char *name) {
    char *all = pl_metrics_text(NULL);
    size_t cap = strlen(all) + 1, len = 0;
    char *out = calloc(1, cap);
    size_t nlen = strlen(name);
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        const char *subject = line;
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) subject = line + 7;
        if (strncmp(subject, name, nlen) != 0) continue;
        char after = subject[nlen];
        if (after != ' ' && after != '{' && after != '_') continue;
        len += (size_t)snprintf(out + len, cap - len, "%s\n", line);
    }
    free(all);
    return out;
}

TEST(counter_with_labels) {
    pl_metric *m = pl_metric_counter("test_requests_total", "Requests, by route and status", "route,status");
    CHECK(pl_metric_counter("test_requests_total", "Requests, by route and status", "route,status") == m);
    pl_metric_add(m, (const char *[]){"message", "200"}, 1);
    pl_metric_add(m, (const char *[]){"webhook", "403"}, 1);
    pl_metric_add(m, (const char *[]){"message", "200"}, 2);
    pl_metric_add(m, (const char *[]){"message", "200"}, -5); /* a counter never goes down */
    char *text = lines_of("test_requests_total");
    CHECK_STR(text, "# HELP test_requests_total Requests, by route and status\n"
                    "# TYPE test_requests_total counter\n"
                    "test_requests_total{route=\"message\",status=\"200\"} 3\n"
                    "test_requests_total{route=\"webhook\",status=\"403\"} 1\n");
    free(text);
}

TEST(label_values_and_help_escaped) {
    pl_metric *m = pl_metric_counter("test_escaped_total", "Help with a \\ and a\nnewline, \"quoted\"", "value");
    pl_metric_add(m, (const char *[]){"back\\slash \"quote\"\nnew line"}, 1);
    pl_metric_add(m, (const char *[]){""}, 1);
    char *text = lines_of("test_escaped_total");
    CHECK_STR(text, "# HELP test_escaped_total Help with a \\\\ and a\\nnewline, \"quoted\"\n"
                    "# TYPE test_escaped_total counter\n"
                    "test_escaped_total{value=\"back\\\\slash \\\"quote\\\"\\nnew line\"} 1\n"
                    "test_escaped_total{value=\"\"} 1\n");
    free(text);
}

TEST(gauge_without_labels) {
    pl_metric *m = pl_metric_gauge("test_open", "Things open", "");
    pl_metric_add(m, NULL, 1);
    pl_metric_add(m, NULL, 1);
    pl_metric_add(m, NULL, -1);
    char *text = lines_of("test_open");
    CHECK_STR(text, "# HELP test_open Things open\n# TYPE test_open gauge\ntest_open 1\n");
    free(text);
    pl_metric_set(m, NULL, 0.25);
    text = lines_of("test_open");
    CHECK_STR(text, "# HELP test_open Things open\n# TYPE test_open gauge\ntest_open 0.25\n");
    free(text);
}

TEST(histogram_buckets_cumulative) {
    static const double bounds[] = {0.125, 0.5, 1};
    pl_metric *m = pl_metric_histogram("test_duration_seconds", "Durations", "bot", bounds, 3);
    pl_metric_observe(m, (const char *[]){"shop"}, 0.0625);
    pl_metric_observe(m, (const char *[]){"shop"}, 0.5); /* on a bound: in that bucket */
    pl_metric_observe(m, (const char *[]){"shop"}, 0.75);
    pl_metric_observe(m, (const char *[]){"shop"}, 7);
    pl_metric_observe(m, (const char *[]){"cafe"}, 0.25);
    char *text = lines_of("test_duration_seconds");
    CHECK_STR(text, "# HELP test_duration_seconds Durations\n"
                    "# TYPE test_duration_seconds histogram\n"
                    "test_duration_seconds_bucket{bot=\"shop\",le=\"0.125\"} 1\n"
                    "test_duration_seconds_bucket{bot=\"shop\",le=\"0.5\"} 2\n"
                    "test_duration_seconds_bucket{bot=\"shop\",le=\"1\"} 3\n"
                    "test_duration_seconds_bucket{bot=\"shop\",le=\"+Inf\"} 4\n"
                    "test_duration_seconds_sum{bot=\"shop\"} 8.3125\n"
                    "test_duration_seconds_count{bot=\"shop\"} 4\n"
                    "test_duration_seconds_bucket{bot=\"cafe\",le=\"0.125\"} 0\n"
                    "test_duration_seconds_bucket{bot=\"cafe\",le=\"0.5\"} 1\n"
                    "test_duration_seconds_bucket{bot=\"cafe\",le=\"1\"} 1\n"
                    "test_duration_seconds_bucket{bot=\"cafe\",le=\"+Inf\"} 1\n"
                    "test_duration_seconds_sum{bot=\"cafe\"} 0.25\n"
                    "test_duration_seconds_count{bot=\"cafe\"} 1\n");
    free(text);
}

TEST(histogram_without_labels) {
    pl_metric *m = pl_metric_histogram("test_batch_size", "Sizes", "", pl_metric_sizes, pl_metric_sizes_count);
    pl_metric_observe(m, NULL, 3);
    char *text = lines_of("test_batch_size");
    CHECK(strstr(text, "test_batch_size_bucket{le=\"2\"} 0\n") != NULL);
    CHECK(strstr(text, "test_batch_size_bucket{le=\"4\"} 1\n") != NULL);
    CHECK(strstr(text, "test_batch_size_bucket{le=\"+Inf\"} 1\n") != NULL);
    CHECK(strstr(text, "test_batch_size_sum 3\ntest_batch_size_count 1\n") != NULL);
    free(text);
}

typedef struct {
    int depth;
} owner;

static void read_depth(pl_metric_out *out, void *ud) {
    owner *o = ud;
    pl_metric_sample(out, (const char *[]){"shop", "telegram"}, o->depth);
    pl_metric_sample(out, (const char *[]){"shop", "whats\"app"}, 0);
}

TEST(readers_at_scrape_time) {
    owner a = {3}, b = {5};
    pl_metric_reader *ra = pl_metric_reader_add("test_depth", "Queued", PL_METRIC_GAUGE, "bot,channel", read_depth, &a);
    pl_metric_reader *rb = pl_metric_reader_add("test_depth", "Queued", PL_METRIC_GAUGE, "bot,channel", read_depth, &b);
    char *text = lines_of("test_depth");
    /* two readers of one name: one head, the samples of both in the order they were added */
    CHECK_STR(text, "# HELP test_depth Queued\n"
                    "# TYPE test_depth gauge\n"
                    "test_depth{bot=\"shop\",channel=\"telegram\"} 3\n"
                    "test_depth{bot=\"shop\",channel=\"whats\\\"app\"} 0\n"
                    "test_depth{bot=\"shop\",channel=\"telegram\"} 5\n"
                    "test_depth{bot=\"shop\",channel=\"whats\\\"app\"} 0\n");
    free(text);
    a.depth = 7;
    pl_metric_reader_remove(rb);
    text = lines_of("test_depth");
    CHECK(strstr(text, "test_depth{bot=\"shop\",channel=\"telegram\"} 7\n") != NULL);
    CHECK(strstr(text, "} 5\n") == NULL);
    free(text);
    pl_metric_reader_remove(ra);
    text = lines_of("test_depth");
    CHECK_STR(text, "");
    free(text);
}

TEST(sorted_by_name_numbers_spelled) {
    pl_metric *z = pl_metric_gauge("test_zz_last", "z", "");
    pl_metric *a = pl_metric_gauge("test_aa_first", "a", "");
    pl_metric_set(z, NULL, 1e20);
    pl_metric_set(a, NULL, 1.0 / 3.0);
    char *all = pl_metrics_text(NULL);
    char *first = strstr(all, "# HELP test_aa_first"), *last = strstr(all, "# HELP test_zz_last");
    CHECK(first && last && first < last);
    CHECK(strstr(all, "test_aa_first 0.33333333333333331\n") != NULL);
    CHECK(strstr(all, "test_zz_last 1e+20\n") != NULL);
    /* every line is a head or a sample, and the text ends with a newline */
    CHECK(all[strlen(all) - 1] == '\n');
    free(all);
    pl_metric_set(a, NULL, -42);
    char *text = lines_of("test_aa_first");
    CHECK(strstr(text, "test_aa_first -42\n") != NULL);
    free(text);
}

static void *count_a_lot(void *arg) {
    pl_metric *m = arg;
    const char *bots[] = {"a", "b"};
    for (int i = 0; i < 20000; i++) pl_metric_add(m, (const char *[]){bots[i % 2]}, 1);
    return NULL;
}

TEST(counts_from_threads) {
    pl_metric *m = pl_metric_counter("test_threads_total", "From threads", "bot");
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, count_a_lot, m);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    char *text = lines_of("test_threads_total");
    CHECK(strstr(text, "test_threads_total{bot=\"a\"} 40000\n") != NULL);
    CHECK(strstr(text, "test_threads_total{bot=\"b\"} 40000\n") != NULL);
    free(text);
}

static int warnings;
static void count_warnings(pl_log_level level, const char *line, void *ud) {
    (void)ud;
    if (level == PL_LOG_WARN && strstr(line, "test_many_total")) warnings++;
}

TEST(series_capped) {
    pl_log_set_sink(count_warnings, NULL, 1);
    pl_metric *m = pl_metric_counter("test_many_total", "Too many", "id");
    char id[16];
    for (int i = 0; i < PL_METRIC_MAX_SERIES + 10; i++) {
        snprintf(id, sizeof id, "%d", i);
        pl_metric_add(m, (const char *[]){id}, 1);
    }
    pl_metric_add(m, (const char *[]){"0"}, 1); /* a series made before still counts */
    pl_log_set_sink(NULL, NULL, 0);
    char *text = lines_of("test_many_total");
    int samples = 0;
    for (char *p = text; (p = strstr(p, "test_many_total{")); p++) samples++;
    CHECK(samples == PL_METRIC_MAX_SERIES);
    CHECK(strstr(text, "test_many_total{id=\"0\"} 2\n") != NULL);
    CHECK(strstr(text, "{id=\"2000\"}") == NULL);
    CHECK(warnings == 1);
    free(text);
}

int main(void) {
    RUN(counter_with_labels);
    RUN(label_values_and_help_escaped);
    RUN(gauge_without_labels);
    RUN(histogram_buckets_cumulative);
    RUN(histogram_without_labels);
    RUN(readers_at_scrape_time);
    RUN(sorted_by_name_numbers_spelled);
    RUN(counts_from_threads);
    RUN(series_capped);
    return check_done();
}
