/* analytics: the shop's figures from the events table; see analytics.h.
 *
 * One pass over the bot's event rows of the range, in time order, a page at
 * a time. Each row is a turn's events; its names (" message reply ... ")
 * are enough for most of them, and its list of events (JSON) is read only
 * when one of them carries what a figure needs (a price, a text, a time).
 * Conversations are kept in a map while the pass lasts. */
#define _GNU_SOURCE
#include "analytics.h"

#include <stdlib.h>
#include <string.h>

#include "base/calendar.h"
#include "base/common.h"
#include "base/map.h"

#define PAGE_ROWS 2000
#define MAX_CURRENCIES 16

/* --- sums of money per currency ------------------------------------------------------ */

typedef struct {
    char currency[4];
    int64_t amount;
    int64_t count;
} money_sum;

typedef struct {
    money_sum list[MAX_CURRENCIES];
    size_t n;
} money_sums;

static void money_add(money_sums *sums, const char *currency, int64_t amount) {
    if (!currency || strlen(currency) != 3) return;
    for (size_t i = 0; i < sums->n; i++) {
        if (strcmp(sums->list[i].currency, currency) == 0) {
            sums->list[i].amount += amount;
            sums->list[i].count++;
            return;
        }
    }
    if (sums->n == MAX_CURRENCIES) return;
    money_sum *m = &sums->list[sums->n++];
    memcpy(m->currency, currency, 4);
    m->amount = amount;
    m->count = 1;
}

static int by_currency(const void *a, const void *b) {
    return strcmp(((const money_sum *)a)->currency, ((const money_sum *)b)->currency);
}

/* Sums are listed by currency code, whatever came first. */
static void money_sort(money_sums *sums) { qsort(sums->list, sums->n, sizeof *sums->list, by_currency); }

static json_t *money_json(const money_sums *sums) {
    json_t *list = json_array();
    for (size_t i = 0; i < sums->n; i++)
        json_array_append_new(list, json_pack("{s:s, s:I}", "currency", sums->list[i].currency, "amount",
                                              (json_int_t)sums->list[i].amount));
    return list;
}

/* --- what is counted ---------------------------------------------------------------------- */

enum { SHOWN = 1, CART = 2, CHECKOUT = 4, PAID = 8, HANDOFF = 16 };

typedef struct {
    size_t day;     /* the day it started (an index of the range's days) */
    int started;    /* it started in the range (else it is only continued) */
    int messages;   /* the shopper's */
    unsigned flags; /* SHOWN ... */
    int last_step;  /* where it waited last (a step id), or -1 */
    int64_t last_heard; /* when the shopper last wrote */
    int64_t last_seen;  /* its latest turn */
    int *steps;     /* the steps it waited at, each once */
    size_t nsteps, room;
    char *channel;
} conversation;

typedef struct {
    int64_t conversations, engaged, messages, not_understood, orders;
    money_sums revenue;
} day_tally;

typedef struct {
    int64_t *list;
    size_t n, room;
} samples;

typedef struct {
    int64_t funnel[6];
    pl_map *channels;  /* channel -> conversations */
    int64_t *dropped;  /* per step id */
    int64_t *reached;  /* per step id */
} conversation_sums;

typedef struct {
    const pl_analytics_query *q;
    pl_calendar_days days;
    conversation_sums sums;  /* of the conversations summed up (quiet long enough, or at the end) */
    int64_t rows_read;
    day_tally *per_day;
    pl_map *conversations; /* "channel\x1fuser\x1fconv" -> conversation */
    pl_map *step_ids;      /* "flow.step" -> id + 1 */
    char **step_names;
    size_t nsteps, steps_room;
    pl_map *texts;         /* a not-understood message, folded -> its count (int64_t *) */
    int64_t other_texts;
    pl_map *custom;        /* a bot's own event name -> its count */
    int64_t messages, not_understood, recommended_shown, recommended_taken;
    int64_t payments_failed, reminders, recovered, handoffs, claimed, closed, script_errors, budget_aborts;
    money_sums revenue, refunds, recovered_revenue;
    samples claim_s, close_s;
} tally;

static void sample_add(samples *s, int64_t v) {
    if (s->n == s->room) {
        s->room = s->room ? s->room * 2 : 16;
        if (!(s->list = realloc(s->list, s->room * sizeof *s->list))) abort();
    }
    s->list[s->n++] = v;
}

static int by_value(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static json_t *median_json(samples *s) {
    if (s->n == 0) return json_null();
    qsort(s->list, s->n, sizeof *s->list, by_value);
    return json_integer(s->n % 2 ? s->list[s->n / 2] : (s->list[s->n / 2 - 1] + s->list[s->n / 2]) / 2);
}

static void free_value(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    free(value);
}

static int64_t *counter(pl_map *map, const char *key) {
    int64_t *n = pl_map_get(map, key);
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n) abort();
        pl_map_put(map, key, n);
    }
    return n;
}

static int step_id(tally *t, const char *step) {
    intptr_t id = (intptr_t)pl_map_get(t->step_ids, step);
    if (id) return (int)id - 1;
    if (t->nsteps == t->steps_room) {
        size_t was = t->steps_room;
        t->steps_room = t->steps_room ? t->steps_room * 2 : 32;
        if (!(t->step_names = realloc(t->step_names, t->steps_room * sizeof *t->step_names))) abort();
        if (!(t->sums.dropped = realloc(t->sums.dropped, t->steps_room * sizeof *t->sums.dropped))) abort();
        if (!(t->sums.reached = realloc(t->sums.reached, t->steps_room * sizeof *t->sums.reached))) abort();
        memset(t->sums.dropped + was, 0, (t->steps_room - was) * sizeof *t->sums.dropped);
        memset(t->sums.reached + was, 0, (t->steps_room - was) * sizeof *t->sums.reached);
    }
    t->step_names[t->nsteps] = pl_strdup(step);
    pl_map_put(t->step_ids, step, (void *)(intptr_t)(t->nsteps + 1));
    return (int)t->nsteps++;
}

static void reach_step(conversation *c, int id) {
    c->last_step = id;
    for (size_t i = 0; i < c->nsteps; i++)
        if (c->steps[i] == id) return;
    if (c->nsteps == c->room) {
        c->room = c->room ? c->room * 2 : 8;
        if (!(c->steps = realloc(c->steps, c->room * sizeof *c->steps))) abort();
    }
    c->steps[c->nsteps++] = id;
}

/* --- one row: a turn's events ------------------------------------------------------------- */

static conversation *conversation_of(tally *t, const json_t *row, size_t day) {
    const char *channel = json_string_value(json_object_get(row, "channel"));
    char *key = pl_strdupf("%s\x1f%s\x1f%lld", channel, json_string_value(json_object_get(row, "user")),
                           (long long)json_integer_value(json_object_get(row, "conv")));
    conversation *c = pl_map_get(t->conversations, key);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) abort();
        c->day = day;
        c->last_step = -1;
        c->channel = pl_strdup(channel);
        pl_map_put(t->conversations, key, c);
    }
    free(key);
    return c;
}

/* The props of the first event named name in the row's list (parsed once
 * per row into *list), or NULL. */
static const json_t *props_of(const json_t *row, json_t **list, const char *name, size_t nth) {
    if (!*list) *list = json_loads(json_string_value(json_object_get(row, "list")), 0, NULL);
    size_t i, seen = 0;
    json_t *event;
    json_array_foreach(*list, i, event) {
        const char *n = json_string_value(json_object_get(event, "name"));
        if (n && strcmp(n, name) == 0 && seen++ == nth) return json_object_get(event, "props");
    }
    return NULL;
}

static int64_t prop_int(const json_t *props, const char *key) {
    return json_integer_value(json_object_get(props, key));
}

/* One event of a row (its nth of that name), counted. */
static void count_event(tally *t, conversation *c, day_tally *day, const char *name, size_t nth, const json_t *row,
                        json_t **list) {
    if (strcmp(name, "message") == 0) {
        c->messages++;
        c->last_heard = json_integer_value(json_object_get(row, "at"));
        t->messages++;
        if (day) day->messages++;
    } else if (strcmp(name, "conversation_started") == 0) {
        c->started = 1;
    } else if (strcmp(name, "reply") == 0 || strcmp(name, "step") == 0 || strcmp(name, "cart_remove") == 0 ||
               strcmp(name, "code_applied") == 0 || strcmp(name, "product_chosen") == 0 ||
               strcmp(name, "order_status") == 0) {
        /* in the export; no figure of its own (the step is the row's) */
    } else if (strcmp(name, "not_understood") == 0) {
        t->not_understood++;
        if (day) day->not_understood++;
        const char *text = json_string_value(json_object_get(props_of(row, list, name, nth), "text"));
        if (text && *text && (pl_map_get(t->texts, text) || pl_map_count(t->texts) < PL_ANALYTICS_MAX_TEXTS))
            ++*counter(t->texts, text);
        else if (text && *text)
            t->other_texts++;
    } else if (strcmp(name, "product_shown") == 0) {
        c->flags |= SHOWN;
        if (json_is_true(json_object_get(props_of(row, list, name, nth), "recommended"))) t->recommended_shown++;
    } else if (strcmp(name, "cart_add") == 0) {
        c->flags |= CART;
        if (json_is_true(json_object_get(props_of(row, list, name, nth), "recommended"))) t->recommended_taken++;
    } else if (strcmp(name, "checkout_started") == 0) {
        c->flags |= CHECKOUT;
    } else if (strcmp(name, "payment_paid") == 0) {
        const json_t *p = props_of(row, list, name, nth);
        c->flags |= PAID;
        money_add(&t->revenue, json_string_value(json_object_get(p, "currency")), prop_int(p, "total"));
        if (day) {
            day->orders++;
            money_add(&day->revenue, json_string_value(json_object_get(p, "currency")), prop_int(p, "total"));
        }
    } else if (strcmp(name, "payment_failed") == 0) {
        t->payments_failed++;
    } else if (strcmp(name, "payment_refunded") == 0) {
        const json_t *p = props_of(row, list, name, nth);
        money_add(&t->refunds, json_string_value(json_object_get(p, "currency")), prop_int(p, "total"));
    } else if (strcmp(name, "reminder_sent") == 0) {
        t->reminders++;
    } else if (strcmp(name, "cart_recovered") == 0) {
        const json_t *p = props_of(row, list, name, nth);
        t->recovered++;
        money_add(&t->recovered_revenue, json_string_value(json_object_get(p, "currency")), prop_int(p, "total"));
    } else if (strcmp(name, "handoff_requested") == 0) {
        c->flags |= HANDOFF;
        t->handoffs++;
    } else if (strcmp(name, "handoff_claimed") == 0) {
        t->claimed++;
        sample_add(&t->claim_s, prop_int(props_of(row, list, name, nth), "wait_s"));
    } else if (strcmp(name, "handoff_closed") == 0) {
        t->closed++;
        sample_add(&t->close_s, prop_int(props_of(row, list, name, nth), "duration_s"));
    } else if (strcmp(name, "script_error") == 0) {
        t->script_errors++;
    } else if (strcmp(name, "budget_abort") == 0) {
        t->budget_aborts++;
    } else if (pl_map_get(t->custom, name) || pl_map_count(t->custom) < PL_ANALYTICS_MAX_CUSTOM) {
        ++*counter(t->custom, name);
    } else {
        ++*counter(t->custom, "(other)");
    }
}

/* How many times name came before in names (from its start to at). */
static size_t nth_of(const char *names, const char *at, const char *name, size_t len) {
    size_t n = 0;
    for (const char *p = names; p < at; p = strchr(p + 1, ' ')) {
        if (strncmp(p + 1, name, len) == 0 && p[1 + len] == ' ') n++;
    }
    return n;
}

static void count_row(tally *t, const json_t *row) {
    int64_t at = json_integer_value(json_object_get(row, "at"));
    size_t d = pl_calendar_day_index(&t->days, at);
    day_tally *day = d < t->days.n ? &t->per_day[d] : NULL;
    conversation *c = conversation_of(t, row, d);
    c->last_seen = at;
    const char *step = json_string_value(json_object_get(row, "step"));
    if (step && *step) reach_step(c, step_id(t, step));
    else if (step) c->last_step = -1; /* its flows ended: it waits nowhere */
    const char *names = json_string_value(json_object_get(row, "names"));
    json_t *list = NULL;
    char name[128];
    for (const char *p = names; p && *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, " ");
        if (len == 0) break;
        if (len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            count_event(t, c, day, name, nth_of(names, p - 1, name, len), row, &list);
        }
        p += len;
    }
    json_decref(list);
}

/* --- the figures --------------------------------------------------------------------------- */

static double rate(int64_t part, int64_t whole) {
    return whole > 0 ? (double)((part * 1000 + whole / 2) / whole) / 1000.0 : 0.0;
}

static void sum_conversation(tally *t, const conversation *c) {
    conversation_sums *s = &t->sums;
    if (!c->started) return;
    /* each step counts the conversations that reached it and every step
     * before it, so no rate is above 1 */
    int reached[6] = {1, c->messages >= 2, (c->flags & SHOWN) != 0, (c->flags & CART) != 0,
                      (c->flags & CHECKOUT) != 0, (c->flags & PAID) != 0};
    for (int i = 0; i < 6 && reached[i]; i++) s->funnel[i]++;
    ++*counter(s->channels, c->channel);
    if (c->day < t->days.n) {
        t->per_day[c->day].conversations++;
        t->per_day[c->day].engaged += c->messages >= 2;
    }
    for (size_t i = 0; i < c->nsteps; i++) s->reached[c->steps[i]]++;
    int quiet = c->last_heard < t->q->now_ms - t->q->quiet_ms;
    if (quiet && !(c->flags & PAID) && c->last_step >= 0) s->dropped[c->last_step]++;
}

static json_t *funnel_json(const int64_t *funnel) {
    static const char *const steps[] = {"conversations", "engaged", "product_shown", "cart", "checkout", "paid"};
    json_t *list = json_array();
    for (int i = 0; i < 6; i++)
        json_array_append_new(list, json_pack("{s:s, s:I, s:f}", "step", steps[i], "count", (json_int_t)funnel[i],
                                              "rate", i == 0 ? 1.0 : rate(funnel[i], funnel[i - 1])));
    return list;
}

typedef struct {
    const char *key;
    int64_t count;
} key_count;

static int by_count(const void *a, const void *b) {
    const key_count *x = a, *y = b;
    if (x->count != y->count) return (x->count < y->count) - (x->count > y->count);
    return strcmp(x->key, y->key);
}

typedef struct {
    key_count *list;
    size_t n;
} key_counts;

static void collect_count(const char *key, void *value, void *ud) {
    key_counts *kc = ud;
    kc->list[kc->n++] = (key_count){key, *(int64_t *)value};
}

/* A map of counts as [{key_name: key, "count": n}], most first, at most
 * limit (0: all). */
static json_t *counts_json(pl_map *map, const char *key_name, size_t limit) {
    key_counts kc = {calloc(pl_map_count(map) + 1, sizeof *kc.list), 0};
    if (!kc.list) abort();
    pl_map_each(map, collect_count, &kc);
    qsort(kc.list, kc.n, sizeof *kc.list, by_count);
    json_t *list = json_array();
    for (size_t i = 0; i < kc.n && (!limit || i < limit); i++)
        json_array_append_new(list, json_pack("{s:s, s:I}", key_name, kc.list[i].key, "count",
                                              (json_int_t)kc.list[i].count));
    free(kc.list);
    return list;
}

static json_t *drop_off_json(const tally *t, const conversation_sums *s) {
    key_count *order = calloc(t->nsteps + 1, sizeof *order);
    if (!order) abort();
    size_t n = 0;
    for (size_t i = 0; i < t->nsteps; i++)
        if (s->dropped[i]) order[n++] = (key_count){t->step_names[i], s->dropped[i]};
    qsort(order, n, sizeof *order, by_count);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        int64_t reached = s->reached[(intptr_t)pl_map_get(t->step_ids, order[i].key) - 1];
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:f}", "step", order[i].key, "dropped",
                                              (json_int_t)order[i].count, "reached", (json_int_t)reached, "share",
                                              rate(order[i].count, reached)));
    }
    free(order);
    return list;
}

static json_t *revenue_json(const tally *t) {
    json_t *list = json_array();
    for (size_t i = 0; i < t->revenue.n; i++) {
        const money_sum *m = &t->revenue.list[i];
        int64_t refunds = 0, refunded = 0;
        for (size_t j = 0; j < t->refunds.n; j++)
            if (strcmp(t->refunds.list[j].currency, m->currency) == 0) {
                refunds = t->refunds.list[j].count;
                refunded = t->refunds.list[j].amount;
            }
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "currency", m->currency, "orders",
                                              (json_int_t)m->count, "amount", (json_int_t)m->amount, "average",
                                              (json_int_t)(m->count ? m->amount / m->count : 0), "refunds",
                                              (json_int_t)refunds, "refunded", (json_int_t)refunded));
    }
    /* refunds in a currency nothing was paid in during the range */
    for (size_t j = 0; j < t->refunds.n; j++) {
        int paid = 0;
        for (size_t i = 0; i < t->revenue.n; i++) paid |= strcmp(t->revenue.list[i].currency, t->refunds.list[j].currency) == 0;
        if (!paid)
            json_array_append_new(list, json_pack("{s:s, s:i, s:i, s:i, s:I, s:I}", "currency",
                                                  t->refunds.list[j].currency, "orders", 0, "amount", 0, "average", 0,
                                                  "refunds", (json_int_t)t->refunds.list[j].count, "refunded",
                                                  (json_int_t)t->refunds.list[j].amount));
    }
    return list;
}

static json_t *days_json(const tally *t) {
    json_t *list = json_array();
    for (size_t i = 0; i < t->days.n; i++) {
        const day_tally *d = &t->per_day[i];
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "day", t->days.names[i],
                                              "conversations", (json_int_t)d->conversations, "engaged",
                                              (json_int_t)d->engaged, "messages", (json_int_t)d->messages,
                                              "not_understood", (json_int_t)d->not_understood, "orders",
                                              (json_int_t)d->orders, "revenue", money_json(&d->revenue)));
    }
    return list;
}

static json_t *or_null(const char *s) { return s ? json_string(s) : json_null(); }

static void free_conversation(const char *key, void *value, void *ud);

/* Sums up a conversation and forgets it: all of them (ud NULL), or those
 * without a turn since *(int64_t *)ud. */
static void sum_and_forget(const char *key, void *value, void *ud) {
    void **args = ud;
    tally *t = args[0];
    conversation *c = value;
    if (args[1] && c->last_seen >= *(int64_t *)args[1]) return;
    sum_conversation(t, c);
    free_conversation(key, c, NULL);
    pl_map_put(t->conversations, key, NULL);
}

static void sum_all(tally *t) {
    void *args[2] = {t, NULL};
    pl_map_each(t->conversations, sum_and_forget, args);
}

static json_t *figures_json(tally *t) {
    const pl_analytics_query *q = t->q;
    sum_all(t);
    conversation_sums s = t->sums;
    money_sort(&t->revenue);
    money_sort(&t->refunds);
    money_sort(&t->recovered_revenue);
    for (size_t i = 0; i < t->days.n; i++) money_sort(&t->per_day[i].revenue);
    json_t *top = counts_json(t->texts, "text", PL_ANALYTICS_TOP_TEXTS);
    json_t *out = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:o, s:o}, s:o, s:o, s:{s:I, s:I, s:o}, s:o,"
        " s:{s:I, s:I, s:f, s:o, s:I}, s:{s:I, s:I, s:f}, s:{s:I, s:f, s:I, s:I, s:o, s:o},"
        " s:o, s:{s:I, s:I, s:I}, s:o, s:o}",
        "bot", q->bot, "from", q->from, "to", q->to, "time_zone", q->time_zone ? q->time_zone : "UTC", "filters",
        "channel", or_null(q->channel), "locale", or_null(q->locale), "funnel", funnel_json(s.funnel), "revenue",
        revenue_json(t), "reminders", "sent", (json_int_t)t->reminders, "recovered", (json_int_t)t->recovered,
        "revenue", money_json(&t->recovered_revenue), "drop_off", drop_off_json(t, &s), "not_understood", "turns",
        (json_int_t)t->messages, "count", (json_int_t)t->not_understood, "rate", rate(t->not_understood, t->messages),
        "top", top, "other", (json_int_t)t->other_texts, "recommendations", "shown", (json_int_t)t->recommended_shown,
        "taken", (json_int_t)t->recommended_taken, "rate", rate(t->recommended_taken, t->recommended_shown),
        "handoff", "requested", (json_int_t)t->handoffs, "rate", rate(t->handoffs, s.funnel[0]), "claimed",
        (json_int_t)t->claimed, "closed", (json_int_t)t->closed, "median_claim_s", median_json(&t->claim_s),
        "median_close_s", median_json(&t->close_s), "channels", counts_json(s.channels, "channel", 0), "errors",
        "script_errors", (json_int_t)t->script_errors, "budget_aborts", (json_int_t)t->budget_aborts,
        "payments_failed", (json_int_t)t->payments_failed, "custom", counts_json(t->custom, "name", 0), "days",
        days_json(t));
    /* (the channel split's key is "conversations", as the page reads it) */
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(out, "channels"), i, row) {
        json_object_set(row, "conversations", json_object_get(row, "count"));
        json_object_del(row, "count");
    }
    return out;
}

/* --- a row's events, for those who read them one by one ------------------------------ */

json_t *pl_analytics_row_events(const char *names, const char *list, const char *step) {
    json_t *with_props = list ? json_loads(list, 0, NULL) : NULL;
    json_t *out = json_array();
    size_t next = 0;
    for (const char *p = names ? names : ""; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, " ");
        if (len == 0) break;
        json_t *candidate = json_array_get(with_props, next);
        const char *name = json_string_value(json_object_get(candidate, "name"));
        json_t *event;
        if (name && strlen(name) == len && strncmp(name, p, len) == 0) {
            event = json_deep_copy(candidate);
            next++;
        } else {
            event = json_pack("{s:s%}", "name", p, len);
            if (len == 4 && strncmp(p, "step", 4) == 0 && step)
                json_object_set_new(event, "props", json_pack("{s:s}", "step", step));
        }
        json_array_append_new(out, event);
        p += len;
    }
    json_decref(with_props);
    return out;
}

/* --- the pass ------------------------------------------------------------------------------- */

static void free_conversation(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    conversation *c = value;
    free(c->steps);
    free(c->channel);
    free(c);
}

static void tally_free(tally *t) {
    pl_map_each(t->sums.channels, free_value, NULL);
    pl_map_free(t->sums.channels);
    free(t->sums.dropped);
    free(t->sums.reached);
    pl_map_each(t->conversations, free_conversation, NULL);
    pl_map_free(t->conversations);
    pl_map_each(t->texts, free_value, NULL);
    pl_map_free(t->texts);
    pl_map_each(t->custom, free_value, NULL);
    pl_map_free(t->custom);
    pl_map_free(t->step_ids);
    for (size_t i = 0; i < t->nsteps; i++) free(t->step_names[i]);
    free(t->step_names);
    free(t->per_day);
    free(t->claim_s.list);
    free(t->close_s.list);
    pl_calendar_days_free(&t->days);
}

/* Calls row_fn(row, ud) for every row q reads, a page at a time in (at,
 * id) order, and page_fn(after_at, ud) after each full page (may be NULL). */
static int each_row(pl_store *store, pl_store_events_query q, void (*row_fn)(const json_t *row, void *ud),
                    void (*page_fn)(int64_t after_at, void *ud), void *ud, char **err) {
    q.after_at = INT64_MIN;
    q.after_id = 0;
    q.limit = PAGE_ROWS;
    for (;;) {
        json_t *rows = NULL;
        if (pl_store_events_read(store, &q, &rows, err) != PL_OK) return PL_ERR;
        size_t i, n = json_array_size(rows);
        json_t *row;
        json_array_foreach(rows, i, row) row_fn(row, ud);
        if (n) {
            json_t *last = json_array_get(rows, n - 1);
            q.after_at = json_integer_value(json_object_get(last, "at"));
            q.after_id = json_integer_value(json_object_get(last, "id"));
        }
        json_decref(rows);
        if (n < PAGE_ROWS) return PL_OK;
        if (page_fn) page_fn(q.after_at, ud);
    }
}

static void count_one(const json_t *row, void *ud) { count_row(ud, row); }

/* Now and then, the conversations long without a turn are summed up. */
static void forget_quiet(int64_t after_at, void *ud) {
    tally *t = ud;
    if ((t->rows_read += PAGE_ROWS) % (50 * PAGE_ROWS) != 0) return;
    int64_t since = after_at - PL_ANALYTICS_FORGET_MS;
    void *args[2] = {t, &since};
    pl_map_each(t->conversations, sum_and_forget, args);
}

/* The figures of the events from lo to hi, counted on days (whose lists
 * they fill; see figures_json). */
static int count_range(pl_store *store, const pl_analytics_query *q, const pl_calendar_days *days, int64_t lo,
                       int64_t hi, json_t **figures, char **err) {
    tally t = {.q = q, .days = *days};
    t.per_day = calloc(days->n + 1, sizeof *t.per_day);
    t.sums.channels = pl_map_new();
    t.conversations = pl_map_new();
    t.step_ids = pl_map_new();
    t.texts = pl_map_new();
    t.custom = pl_map_new();
    if (!t.per_day) abort();
    pl_store_events_query range = {.bot = q->bot, .from_ms = lo, .to_ms = hi, .channel = q->channel,
                                   .locale = q->locale};
    int rc = each_row(store, range, count_one, forget_quiet, &t, err);
    if (rc == PL_OK) *figures = figures_json(&t);
    t.days = (pl_calendar_days){0}; /* the caller's */
    tally_free(&t);
    return rc;
}

/* --- days whose events retention let go of ----------------------------------------------- */

/* into[key] += from[key] (integers). */
static void add_count(json_t *into, const json_t *from, const char *key) {
    json_int_t sum = json_integer_value(json_object_get(into, key)) + json_integer_value(json_object_get(from, key));
    json_object_set_new(into, key, json_integer(sum));
}

/* The item of list whose field is value, added (with only that field) when
 * there is none. */
static json_t *item_of(json_t *list, const char *field, const char *value) {
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *v = json_string_value(json_object_get(item, field));
        if (v && strcmp(v, value) == 0) return item;
    }
    item = json_pack("{s:s}", field, value);
    json_array_append_new(list, item);
    return item;
}

/* Adds from_list's items into into_list's, matched by field: the counts
 * named add up, and a list named "revenue" inside adds up by currency. */
static void merge_list(json_t *into_list, const json_t *from_list, const char *field, const char *const *counts) {
    size_t i;
    json_t *from;
    json_array_foreach(from_list, i, from) {
        const char *value = json_string_value(json_object_get(from, field));
        if (!value) continue;
        json_t *into = item_of(into_list, field, value);
        for (const char *const *c = counts; *c; c++) add_count(into, from, *c);
        static const char *const amount[] = {"amount", NULL};
        if (json_object_get(from, "revenue")) {
            if (!json_is_array(json_object_get(into, "revenue"))) json_object_set_new(into, "revenue", json_array());
            merge_list(json_object_get(into, "revenue"), json_object_get(from, "revenue"), "currency", amount);
        }
    }
}

static void merge_counts(json_t *into, const json_t *from, const char *object, const char *const *counts) {
    json_t *in = json_object_get(into, object);
    for (const char *const *c = counts; *c; c++) add_count(in, json_object_get(from, object), *c);
}

static int by_field_count(const void *a, const void *b, const char *field) {
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, field));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, field));
    return (x < y) - (x > y);
}
static int by_dropped(const void *a, const void *b) { return by_field_count(a, b, "dropped"); }
static int by_conversations(const void *a, const void *b) { return by_field_count(a, b, "conversations"); }
static int by_day(const void *a, const void *b) {
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "day")),
                  json_string_value(json_object_get(*(json_t *const *)b, "day")));
}

/* Sorts a JSON list in place. */
static void sort_list(json_t *list, int (*cmp)(const void *, const void *)) {
    size_t n = json_array_size(list);
    json_t **items = calloc(n + 1, sizeof *items);
    if (!items) abort();
    for (size_t i = 0; i < n; i++) items[i] = json_incref(json_array_get(list, i));
    qsort(items, n, sizeof *items, cmp);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++) json_array_append_new(list, items[i]);
    free(items);
}

static json_int_t count_of(const json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

/* The rates, averages and shares again, after days were added in. */
static void recompute(json_t *f) {
    json_t *funnel = json_object_get(f, "funnel");
    for (size_t i = 0; i < json_array_size(funnel); i++)
        json_object_set_new(json_array_get(funnel, i), "rate",
                            json_real(i == 0 ? 1.0 : rate(count_of(json_array_get(funnel, i), "count"),
                                                          count_of(json_array_get(funnel, i - 1), "count"))));
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(f, "revenue"), i, item) {
        json_int_t orders = count_of(item, "orders");
        json_object_set_new(item, "average", json_integer(orders ? count_of(item, "amount") / orders : 0));
    }
    json_array_foreach(json_object_get(f, "drop_off"), i, item)
        json_object_set_new(item, "share", json_real(rate(count_of(item, "dropped"), count_of(item, "reached"))));
    sort_list(json_object_get(f, "drop_off"), by_dropped);
    sort_list(json_object_get(f, "channels"), by_conversations);
    json_t *nu = json_object_get(f, "not_understood"), *rec = json_object_get(f, "recommendations");
    json_object_set_new(nu, "rate", json_real(rate(count_of(nu, "count"), count_of(nu, "turns"))));
    json_object_set_new(rec, "rate", json_real(rate(count_of(rec, "taken"), count_of(rec, "shown"))));
    json_t *h = json_object_get(f, "handoff");
    json_object_set_new(h, "rate", json_real(rate(count_of(h, "requested"),
                                                  count_of(json_array_get(funnel, 0), "count"))));
}

/* Adds a kept day's figures (day_figures) into the figures f. */
static void merge_day(json_t *f, const json_t *day) {
    static const char *const count[] = {"count", NULL}, *const amount[] = {"amount", NULL};
    static const char *const money[] = {"orders", "amount", "refunds", "refunded", NULL};
    static const char *const drops[] = {"dropped", "reached", NULL}, *const convs[] = {"conversations", NULL};
    static const char *const days[] = {"conversations", "engaged", "messages", "not_understood", "orders", NULL};
    merge_list(json_object_get(f, "funnel"), json_object_get(day, "funnel"), "step", count);
    merge_list(json_object_get(f, "revenue"), json_object_get(day, "revenue"), "currency", money);
    merge_counts(f, day, "reminders", (const char *const[]){"sent", "recovered", NULL});
    merge_list(json_object_get(json_object_get(f, "reminders"), "revenue"),
               json_object_get(json_object_get(day, "reminders"), "revenue"), "currency", amount);
    merge_list(json_object_get(f, "drop_off"), json_object_get(day, "drop_off"), "step", drops);
    merge_counts(f, day, "not_understood", (const char *const[]){"turns", "count", NULL});
    merge_counts(f, day, "recommendations", (const char *const[]){"shown", "taken", NULL});
    merge_counts(f, day, "handoff", (const char *const[]){"requested", "claimed", "closed", NULL});
    merge_list(json_object_get(f, "channels"), json_object_get(day, "channels"), "channel", convs);
    merge_counts(f, day, "errors", (const char *const[]){"script_errors", "budget_aborts", "payments_failed", NULL});
    merge_list(json_object_get(f, "custom"), json_object_get(day, "custom"), "name", count);
    merge_list(json_object_get(f, "days"), json_object_get(day, "days"), "day", days);
}

/* A day's figures as they are kept: the counts, without what was said
 * (the not-understood texts) or the medians of a single day. */
static json_t *day_figures(json_t *f) {
    static const char *const gone[] = {"bot", "from", "to", "time_zone", "filters"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) json_object_del(f, gone[i]);
    json_t *nu = json_object_get(f, "not_understood");
    json_object_del(nu, "top");
    json_object_del(nu, "other");
    json_object_del(json_object_get(f, "handoff"), "median_claim_s");
    json_object_del(json_object_get(f, "handoff"), "median_close_s");
    return f;
}

int pl_analytics_figures(pl_store *store, const pl_analytics_query *q, json_t **figures, int *bad_request,
                         char **err) {
    *figures = NULL;
    *bad_request = 0;
    pl_calendar_days days;
    if (pl_calendar_days_of(q->time_zone ? q->time_zone : "UTC", q->from, q->to, PL_ANALYTICS_MAX_DAYS, &days,
                            err) != PL_OK) {
        *bad_request = 1;
        return PL_ERR;
    }
    json_t *f = NULL, *kept = NULL;
    int rc = count_range(store, q, &days, days.starts[0], days.starts[days.n], &f, err);
    if (rc == PL_OK) rc = pl_store_analytics_days_read(store, q->bot, q->from, q->to, q->channel, q->locale, &kept, err);
    if (rc == PL_OK && json_array_size(kept)) {
        size_t i;
        json_t *row;
        json_array_foreach(kept, i, row) merge_day(f, json_object_get(row, "figures"));
        sort_list(json_object_get(f, "days"), by_day);
        recompute(f);
    }
    json_decref(kept);
    pl_calendar_days_free(&days);
    if (rc != PL_OK) {
        json_decref(f);
        return PL_ERR;
    }
    *figures = f;
    return PL_OK;
}

/* The (channel, locale) pairs of the events from lo to hi: "channel\x1flocale"
 * keys of a new map. */
static void add_pair(const json_t *row, void *ud) {
    const char *locale = json_string_value(json_object_get(row, "locale"));
    char *key = pl_strdupf("%s\x1f%s", json_string_value(json_object_get(row, "channel")), locale ? locale : "");
    pl_map_put(ud, key, (void *)1);
    free(key);
}

static int pairs_of(pl_store *store, const char *bot, int64_t lo, int64_t hi, pl_map **pairs, char **err) {
    *pairs = pl_map_new();
    pl_store_events_query range = {.bot = bot, .from_ms = lo, .to_ms = hi};
    return each_row(store, range, add_pair, NULL, *pairs, err);
}

/* A day's figures read for keeping, per (channel, locale): the read
 * phase's answer, which the write phase keeps. */
struct pl_analytics_day {
    char *bot;
    char date[11];
    int64_t lo, hi; /* the day, in UTC ms */
    json_t *pairs;  /* [{"channel", "locale", "figures"}] */
};

typedef struct {
    pl_store *store;
    const pl_analytics_query *q;
    const pl_calendar_days *day;
    json_t *pairs;
    char *err;
    int rc;
} roll;

/* The figures of one (channel, locale) of the day's events. */
static void roll_pair(const char *key, void *value, void *ud) {
    (void)value;
    roll *r = ud;
    if (r->rc != PL_OK) return;
    const char *sep = strchr(key, '\x1f');
    char *channel = pl_strndup(key, (size_t)(sep - key));
    const char *locale = sep + 1;
    pl_analytics_query q = *r->q;
    q.channel = channel;
    q.locale = locale; /* "": exactly the turns that had none */
    json_t *f = NULL;
    r->rc = count_range(r->store, &q, r->day, r->day->starts[0], r->day->starts[1], &f, &r->err);
    if (r->rc == PL_OK)
        json_array_append_new(r->pairs, json_pack("{s:s, s:s, s:o}", "channel", channel, "locale", locale, "figures",
                                                  day_figures(f)));
    free(channel);
}

int pl_analytics_roll_up_read(pl_store *store, const char *bot, const char *time_zone, int64_t quiet_ms,
                              int64_t before_ms, pl_analytics_day **out, char **err) {
    *out = NULL;
    const char *zone = time_zone ? time_zone : "UTC";
    /* the first turn with events before before_ms, and its day */
    json_t *first = NULL;
    pl_store_events_query one = {.bot = bot, .from_ms = INT64_MIN, .to_ms = before_ms, .after_at = INT64_MIN,
                                 .limit = 1};
    if (pl_store_events_read(store, &one, &first, err) != PL_OK) return PL_ERR;
    int64_t at = json_integer_value(json_object_get(json_array_get(first, 0), "at"));
    int none = json_array_size(first) == 0;
    json_decref(first);
    if (none) return PL_OK;
    pl_analytics_day *d = calloc(1, sizeof *d);
    if (!d) abort();
    pl_calendar_days day;
    if (pl_calendar_date_at(zone, at, d->date) != PL_OK || pl_calendar_days_of(zone, d->date, d->date, 1, &day, err) != PL_OK) {
        free(d);
        return pl_fail(err, "unknown time zone '%s'", zone);
    }
    /* the whole day, also what came after before_ms (the transcripts of the
     * day before it go: the day is kept whole, not in parts) */
    d->bot = pl_strdup(bot);
    d->lo = day.starts[0];
    d->hi = day.starts[1];
    d->pairs = json_array();
    pl_analytics_query q = {.bot = bot, .time_zone = zone, .from = d->date, .to = d->date, .quiet_ms = quiet_ms,
                            .now_ms = pl_now_ms()};
    pl_map *pairs = NULL;
    roll r = {.store = store, .q = &q, .day = &day, .pairs = d->pairs};
    r.rc = pairs_of(store, bot, d->lo, d->hi, &pairs, err);
    if (r.rc == PL_OK) {
        pl_map_each(pairs, roll_pair, &r);
        if (r.rc != PL_OK) *err = r.err, r.err = NULL;
    }
    free(r.err);
    pl_map_free(pairs);
    pl_calendar_days_free(&day);
    if (r.rc != PL_OK) {
        pl_analytics_day_free(d);
        return PL_ERR;
    }
    *out = d;
    return PL_OK;
}

/* One (channel, locale) of the day kept, added to what was kept of it. */
static int keep_pair(pl_store *store, const pl_analytics_day *d, json_t *pair, char **err) {
    const char *channel = json_string_value(json_object_get(pair, "channel"));
    const char *locale = json_string_value(json_object_get(pair, "locale"));
    json_t *f = json_object_get(pair, "figures"), *before = NULL;
    if (pl_store_analytics_days_read(store, d->bot, d->date, d->date, channel, locale, &before, err) != PL_OK)
        return PL_ERR;
    json_t *earlier = json_object_get(json_array_get(before, 0), "figures");
    if (earlier) {
        merge_day(f, earlier);
        recompute(f);
    }
    char *text = json_dumps(f, JSON_COMPACT);
    int rc = pl_store_analytics_day_put(store, d->bot, d->date, channel, locale, text, err);
    free(text);
    json_decref(before);
    return rc;
}

int pl_analytics_roll_up_write(pl_store *store, const pl_analytics_day *d, int64_t *turns, char **err) {
    *turns = 0;
    if (pl_store_begin(store, err) != PL_OK) return PL_ERR;
    int rc = PL_OK;
    size_t i;
    json_t *pair;
    json_array_foreach(d->pairs, i, pair) if (rc == PL_OK) rc = keep_pair(store, d, pair, err);
    /* (a turn of that day committed since the read would go uncounted: the
     * day is past, a turn is dated when its message came) */
    if (rc == PL_OK) rc = pl_store_events_purge(store, d->bot, d->lo, d->hi, turns, err);
    if (rc == PL_OK) return pl_store_commit(store, err);
    pl_store_rollback(store);
    return PL_ERR;
}

void pl_analytics_day_free(pl_analytics_day *d) {
    if (!d) return;
    free(d->bot);
    json_decref(d->pairs);
    free(d);
}

int pl_analytics_roll_up(pl_store *store, const char *bot, const char *time_zone, int64_t quiet_ms,
                         int64_t before_ms, int64_t *turns, char **err) {
    *turns = 0;
    pl_analytics_day *d = NULL;
    if (pl_analytics_roll_up_read(store, bot, time_zone, quiet_ms, before_ms, &d, err) != PL_OK) return PL_ERR;
    int rc = d ? pl_analytics_roll_up_write(store, d, turns, err) : PL_OK;
    pl_analytics_day_free(d);
    return rc;
}
