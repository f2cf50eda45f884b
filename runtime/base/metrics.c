/* metrics: the registry of families, their series, and the text format;
 * see metrics.h. Owns every family and reader of the process (a list under
 * one mutex, for making families and writing the text) and each family's
 * series (under the family's own mutex, for counting). */
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"

const double pl_metric_seconds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const size_t pl_metric_seconds_count = sizeof pl_metric_seconds / sizeof *pl_metric_seconds;
const double pl_metric_sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
const size_t pl_metric_sizes_count = sizeof pl_metric_sizes / sizeof *pl_metric_sizes;

typedef struct {
    char **values;     /* one a label */
    double value;      /* a counter's or a gauge's */
    uint64_t *buckets; /* a histogram's: observations per bucket (not cumulative), +Inf's last */
    double sum;
    uint64_t count;
} series;

/* What a family and a reader share: how the text names and heads it. */
typedef struct {
    char *name, *help;
    pl_metric_type type;
    char *labels[PL_METRIC_MAX_LABELS];
    size_t nlabels;
} head;

struct pl_metric {
    head h;
    double *bounds;
    size_t nbounds;
    pthread_mutex_t lock;
    series **series;
    size_t nseries, cap;
    int warned; /* about series beyond the cap */
    pl_metric *next;
};

struct pl_metric_reader {
    head h;
    pl_metric_read_fn fn;
    void *ud;
    pl_metric_reader *next;
};

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static pl_metric *families;
static pl_metric_reader *readers;

/* --- names ------------------------------------------------------------------- */

static int valid_name(const char *s, size_t len) {
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* Fills h from the caller's words; aborts on a name the format forbids
 * (a bug of the caller's, found by any test that counts). */
static void head_init(head *h, const char *name, const char *help, pl_metric_type type, const char *labels) {
    memset(h, 0, sizeof *h);
    if (!valid_name(name, strlen(name))) {
        fprintf(stderr, "metrics: '%s' is not a metric name\n", name);
        abort();
    }
    h->name = pl_strdup(name);
    h->help = pl_strdup(help ? help : "");
    h->type = type;
    for (const char *p = labels ? labels : ""; *p;) {
        size_t len = strcspn(p, ",");
        if (h->nlabels == PL_METRIC_MAX_LABELS || !valid_name(p, len) ||
            (type == PL_METRIC_HISTOGRAM && len == 2 && strncmp(p, "le", 2) == 0)) {
            fprintf(stderr, "metrics: %s: the labels '%s' are not allowed\n", name, labels);
            abort();
        }
        h->labels[h->nlabels++] = pl_strndup(p, len);
        p += len;
        if (*p == ',') p++;
    }
}

static void head_clear(head *h) {
    free(h->name);
    free(h->help);
    for (size_t i = 0; i < h->nlabels; i++) free(h->labels[i]);
}

static int same_head(const head *a, const head *b) {
    if (a->type != b->type || a->nlabels != b->nlabels) return 0;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0) return 0;
    return 1;
}

/* --- families ------------------------------------------------------------------ */

static pl_metric *family(const char *name, const char *help, pl_metric_type type, const char *labels,
                         const double *bounds, size_t nbounds) {
    head h;
    head_init(&h, name, help, type, labels);
    pthread_mutex_lock(&registry);
    pl_metric *m = families;
    while (m && strcmp(m->h.name, name) != 0) m = m->next;
    if (m) {
        pthread_mutex_unlock(&registry);
        if (!same_head(&m->h, &h)) {
            fprintf(stderr, "metrics: %s was made before with another type or labels\n", name);
            abort();
        }
        head_clear(&h);
        return m;
    }
    m = calloc(1, sizeof *m);
    if (!m) abort();
    m->h = h;
    pthread_mutex_init(&m->lock, NULL);
    if (type == PL_METRIC_HISTOGRAM) {
        m->bounds = malloc(sizeof *m->bounds * (nbounds ? nbounds : 1));
        if (!m->bounds) abort();
        memcpy(m->bounds, bounds, sizeof *m->bounds * nbounds);
        m->nbounds = nbounds;
    }
    m->next = families;
    families = m;
    pthread_mutex_unlock(&registry);
    return m;
}

pl_metric *pl_metric_counter(const char *name, const char *help, const char *labels) {
    return family(name, help, PL_METRIC_COUNTER, labels, NULL, 0);
}

pl_metric *pl_metric_gauge(const char *name, const char *help, const char *labels) {
    return family(name, help, PL_METRIC_GAUGE, labels, NULL, 0);
}

pl_metric *pl_metric_histogram(const char *name, const char *help, const char *labels, const double *bounds,
                               size_t nbounds) {
    return family(name, help, PL_METRIC_HISTOGRAM, labels, bounds, nbounds);
}

/* The series of these label values, made the first time; NULL past the
 * cap. Called with m->lock held. */
static series *find_series(pl_metric *m, const char *const *values) {
    for (size_t i = 0; i < m->nseries; i++) {
        series *s = m->series[i];
        size_t j = 0;
        while (j < m->h.nlabels && strcmp(s->values[j], values[j] ? values[j] : "") == 0) j++;
        if (j == m->h.nlabels) return s;
    }
    if (m->nseries == PL_METRIC_MAX_SERIES) {
        if (!m->warned)
            pl_warn("metrics: %s has %d series: samples of new label values are dropped", m->h.name,
                    PL_METRIC_MAX_SERIES);
        m->warned = 1;
        return NULL;
    }
    if (m->nseries == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        series **grown = realloc(m->series, sizeof *grown * m->cap);
        if (!grown) abort();
        m->series = grown;
    }
    series *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->values = calloc(m->h.nlabels ? m->h.nlabels : 1, sizeof *s->values);
    if (!s->values) abort();
    for (size_t j = 0; j < m->h.nlabels; j++) s->values[j] = pl_strdup(values[j] ? values[j] : "");
    if (m->h.type == PL_METRIC_HISTOGRAM) {
        s->buckets = calloc(m->nbounds + 1, sizeof *s->buckets);
        if (!s->buckets) abort();
    }
    m->series[m->nseries++] = s;
    return s;
}

void pl_metric_add(pl_metric *m, const char *const *values, double n) {
    if (!m || m->h.type == PL_METRIC_HISTOGRAM || (m->h.type == PL_METRIC_COUNTER && !(n >= 0))) return;
    pthread_mutex_lock(&m->lock);
    series *s = find_series(m, values);
    if (s) s->value += n;
    pthread_mutex_unlock(&m->lock);
}

void pl_metric_set(pl_metric *m, const char *const *values, double v) {
    if (!m || m->h.type != PL_METRIC_GAUGE) return;
    pthread_mutex_lock(&m->lock);
    series *s = find_series(m, values);
    if (s) s->value = v;
    pthread_mutex_unlock(&m->lock);
}

void pl_metric_observe(pl_metric *m, const char *const *values, double x) {
    if (!m || m->h.type != PL_METRIC_HISTOGRAM) return;
    size_t b = 0;
    while (b < m->nbounds && !(x <= m->bounds[b])) b++;
    pthread_mutex_lock(&m->lock);
    series *s = find_series(m, values);
    if (s) {
        s->buckets[b]++;
        s->sum += x;
        s->count++;
    }
    pthread_mutex_unlock(&m->lock);
}

/* --- readers ----------------------------------------------------------------------- */

pl_metric_reader *pl_metric_reader_add(const char *name, const char *help, pl_metric_type type, const char *labels,
                                       pl_metric_read_fn fn, void *ud) {
    pl_metric_reader *r = calloc(1, sizeof *r);
    if (!r) abort();
    head_init(&r->h, name, help, type == PL_METRIC_HISTOGRAM ? PL_METRIC_GAUGE : type, labels);
    r->fn = fn;
    r->ud = ud;
    pthread_mutex_lock(&registry);
    r->next = readers;
    readers = r;
    pthread_mutex_unlock(&registry);
    return r;
}

void pl_metric_reader_remove(pl_metric_reader *r) {
    if (!r) return;
    pthread_mutex_lock(&registry);
    pl_metric_reader **link = &readers;
    while (*link && *link != r) link = &(*link)->next;
    if (*link) *link = r->next;
    pthread_mutex_unlock(&registry);
    head_clear(&r->h);
    free(r);
}

/* --- the text ------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
} text;

static void put(text *t, const char *s, size_t len) {
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + len + 1) cap *= 2;
        char *grown = realloc(t->s, cap);
        if (!grown) abort();
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, len);
    t->len += len;
    t->s[t->len] = '\0';
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

/* s with \ and newlines escaped, and " too in a label's value. */
static void put_escaped(text *t, const char *s, int quote) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\') put(t, "\\\\", 2);
        else if (*p == '\n') put(t, "\\n", 2);
        else if (*p == '"' && quote) put(t, "\\\"", 2);
        else put(t, p, 1);
    }
}

/* A sample's value as the format spells it: integers whole, others in the
 * fewest digits that read back the same. */
static void put_number(text *t, double v) {
    char s[40];
    if (v != v) snprintf(s, sizeof s, "NaN");
    else if (v > 1.7976931348623157e308) snprintf(s, sizeof s, "+Inf");
    else if (v < -1.7976931348623157e308) snprintf(s, sizeof s, "-Inf");
    else if (v > -9e15 && v < 9e15 && v == (double)(int64_t)v) snprintf(s, sizeof s, "%lld", (long long)v);
    else {
        snprintf(s, sizeof s, "%.15g", v);
        if (strtod(s, NULL) != v) snprintf(s, sizeof s, "%.17g", v);
    }
    puts_(t, s);
}

/* name[suffix]{label="value",...[,le="bound"]} value\n */
static void put_sample(text *t, const head *h, const char *suffix, char *const *values, const char *le, double v) {
    puts_(t, h->name);
    puts_(t, suffix);
    if (h->nlabels || le) {
        put(t, "{", 1);
        for (size_t i = 0; i < h->nlabels; i++) {
            if (i) put(t, ",", 1);
            puts_(t, h->labels[i]);
            put(t, "=\"", 2);
            put_escaped(t, values[i], 1);
            put(t, "\"", 1);
        }
        if (le) {
            if (h->nlabels) put(t, ",", 1);
            put(t, "le=\"", 4);
            puts_(t, le);
            put(t, "\"", 1);
        }
        put(t, "}", 1);
    }
    put(t, " ", 1);
    put_number(t, v);
    put(t, "\n", 1);
}

static void put_head(text *t, const head *h) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    puts_(t, "# HELP ");
    puts_(t, h->name);
    put(t, " ", 1);
    put_escaped(t, h->help, 0);
    puts_(t, "\n# TYPE ");
    puts_(t, h->name);
    put(t, " ", 1);
    puts_(t, types[h->type]);
    put(t, "\n", 1);
}

static void put_family(text *t, pl_metric *m) {
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nseries; i++) {
        series *s = m->series[i];
        if (m->h.type != PL_METRIC_HISTOGRAM) {
            put_sample(t, &m->h, "", s->values, NULL, s->value);
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= m->nbounds; b++) {
            cumulative += s->buckets[b];
            text le = {0};
            if (b < m->nbounds) put_number(&le, m->bounds[b]);
            else puts_(&le, "+Inf");
            put_sample(t, &m->h, "_bucket", s->values, le.s, (double)cumulative);
            free(le.s);
        }
        put_sample(t, &m->h, "_sum", s->values, NULL, s->sum);
        put_sample(t, &m->h, "_count", s->values, NULL, (double)s->count);
    }
    pthread_mutex_unlock(&m->lock);
}

struct pl_metric_out {
    text *t;
    const head *h;
};

void pl_metric_sample(pl_metric_out *out, const char *const *values, double v) {
    char *copy[PL_METRIC_MAX_LABELS];
    for (size_t i = 0; i < out->h->nlabels; i++) copy[i] = (char *)(values && values[i] ? values[i] : "");
    put_sample(out->t, out->h, "", copy, NULL, v);
}

/* A family or a reader, in the order of the text. */
typedef struct {
    const head *h;
    pl_metric *family;
    pl_metric_reader *reader;
    size_t order; /* readers of one name keep the order they were added in */
} entry;

static int by_name(const void *a, const void *b) {
    const entry *x = a, *y = b;
    int c = strcmp(x->h->name, y->h->name);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

char *pl_metrics_text(size_t *len) {
    text t = {0};
    puts_(&t, "");
    pthread_mutex_lock(&registry);
    size_t n = 0;
    for (pl_metric *m = families; m; m = m->next) n++;
    for (pl_metric_reader *r = readers; r; r = r->next) n++;
    entry *all = calloc(n ? n : 1, sizeof *all);
    if (!all) abort();
    size_t i = n;
    /* both lists are newest first: numbered from the end, oldest first */
    for (pl_metric *m = families; m; m = m->next) {
        i--;
        all[i] = (entry){&m->h, m, NULL, i};
    }
    for (pl_metric_reader *r = readers; r; r = r->next) {
        i--;
        all[i] = (entry){&r->h, NULL, r, i};
    }
    qsort(all, n, sizeof *all, by_name);
    for (i = 0; i < n; i++) {
        if (i == 0 || strcmp(all[i].h->name, all[i - 1].h->name) != 0) put_head(&t, all[i].h);
        if (all[i].family) {
            put_family(&t, all[i].family);
        } else {
            pl_metric_out out = {&t, all[i].h};
            all[i].reader->fn(&out, all[i].reader->ud);
        }
    }
    pthread_mutex_unlock(&registry);
    free(all);
    if (len) *len = t.len;
    return t.s;
}
