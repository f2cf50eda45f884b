/* llm: the manifest's "understanding.llm" checked, and each bot's rate,
 * token budget and counts; see llm.h. Owns the list of bots' accounts
 * (by name, for the process's life) under one mutex. */
#include "llm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/metrics.h"
#include "event/http_policy.h"

/* --- the settings ------------------------------------------------------------ */

#define EXAMPLE                                                                                                   \
    "{\"base_url\": \"https://api.openai.com/v1\", \"model\": \"gpt-4o-mini\", \"api_key_env\": \"SHOP_LLM_KEY\"}"

/* NULL when v (absent: fine) is an integer from lo to hi, else a message. */
static char *check_whole(const json_t *llm, const char *key, long long lo, long long hi, const char *what) {
    json_t *v = json_object_get(llm, key);
    if (!v || (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi)) return NULL;
    return pl_strdupf("\"understanding\": \"llm\": \"%s\" must be a whole number from %lld to %lld (%s)", key, lo,
                      hi, what);
}

static char *check_redact(const json_t *redact) {
    size_t i;
    json_t *kind;
    if (!redact) return NULL;
    if (!json_is_array(redact))
        return pl_strdup("\"understanding\": \"llm\": \"redact\" must be a list of what to take out of the "
                         "shopper's words before they are sent: [\"phone\", \"email\"], or [] for nothing");
    json_array_foreach(redact, i, kind) {
        const char *s = json_string_value(kind);
        if (!s || (strcmp(s, "phone") != 0 && strcmp(s, "email") != 0))
            return pl_strdupf("\"understanding\": \"llm\": \"redact\"[%zu] must be \"phone\" or \"email\"", i);
    }
    return NULL;
}

static char *check_url(const char *base_url) {
    if (!base_url)
        return pl_strdup("\"understanding\": \"llm\": \"base_url\" must be the http(s) URL of an OpenAI-compatible "
                         "API, such as \"https://api.openai.com/v1\" (parley posts to {base_url}/chat/completions)");
    pl_url url;
    char *err = NULL;
    if (pl_http_target_parse(base_url, &url, &err) != PL_OK) {
        char *why = pl_strdupf("\"understanding\": \"llm\": \"base_url\": %s (\"%s\")", err, base_url);
        free(err);
        return why;
    }
    int has_query = strchr(base_url, '?') || strchr(base_url, '#');
    pl_url_clear(&url);
    return has_query ? pl_strdup("\"understanding\": \"llm\": \"base_url\" must have no query or fragment") : NULL;
}

char *pl_llm_check_manifest(const json_t *manifest) {
    json_t *u = json_object_get(manifest, "understanding");
    if (!u) return NULL;
    if (!json_is_object(u)) return pl_strdup("\"understanding\" must be an object such as {\"llm\": " EXAMPLE "}");
    json_t *llm = json_object_get(u, "llm");
    if (!llm) return NULL;
    if (!json_is_object(llm)) return pl_strdup("\"understanding\": \"llm\" must be an object such as " EXAMPLE);
    char *why = check_url(json_string_value(json_object_get(llm, "base_url")));
    if (why) return why;
    const char *model = json_string_value(json_object_get(llm, "model"));
    if (!model || !*model || strlen(model) > 200)
        return pl_strdup("\"understanding\": \"llm\": \"model\" must name the model, such as \"gpt-4o-mini\"");
    json_t *key = json_object_get(llm, "api_key_env");
    if (key && (!json_is_string(key) || !*json_string_value(key)))
        return pl_strdup("\"understanding\": \"llm\": \"api_key_env\" must be the name of the environment variable "
                         "that holds the API key (leave it out for a server that wants none)");
    if ((why = check_whole(llm, "timeout_ms", 100, PL_LLM_MAX_TIMEOUT_MS, "milliseconds to wait for an answer")))
        return why;
    if ((why = check_whole(llm, "requests_per_minute", 1, 100000, "requests at most in each minute")))
        return why;
    if ((why = check_whole(llm, "tokens_per_day", 1, 1000000000000LL, "tokens at most each day")))
        return why;
    if ((why = check_whole(llm, "cache_entries", 0, PL_LLM_MAX_CACHE_ENTRIES, "answers kept; 0: none")))
        return why;
    return check_redact(json_object_get(llm, "redact"));
}

static void set_default(json_t *s, const char *key, json_int_t value) {
    if (!json_object_get(s, key)) json_object_set_new(s, key, json_integer(value));
}

json_t *pl_llm_settings(const json_t *manifest) {
    json_t *llm = json_object_get(json_object_get(manifest, "understanding"), "llm");
    if (!json_is_object(llm)) return NULL;
    json_t *s = json_deep_copy(llm);
    set_default(s, "timeout_ms", PL_LLM_TIMEOUT_MS);
    set_default(s, "requests_per_minute", PL_LLM_REQUESTS_PER_MINUTE);
    set_default(s, "tokens_per_day", PL_LLM_TOKENS_PER_DAY);
    set_default(s, "cache_entries", PL_LLM_CACHE_ENTRIES);
    json_t *redact = json_object(), *list = json_object_get(llm, "redact");
    if (!list) { /* what is not said is taken out */
        json_object_set_new(redact, "phone", json_true());
        json_object_set_new(redact, "email", json_true());
    }
    size_t i;
    json_t *kind;
    json_array_foreach(list, i, kind) json_object_set_new(redact, json_string_value(kind), json_true());
    json_object_set_new(s, "redact", redact);
    return s;
}

/* --- each bot's account -------------------------------------------------------- */

typedef struct account {
    struct account *next;
    char *bot;
    int64_t minute; /* the clock minute requests counts */
    long requests;
    int64_t day; /* the UTC day tokens counts */
    long long tokens;
} account;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static account *accounts;

/* bot's account, made the first time, brought to now_ms's minute and day;
 * called under lock. */
static account *account_at(const char *bot, int64_t now_ms) {
    account *a = accounts;
    while (a && strcmp(a->bot, bot) != 0) a = a->next;
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a) abort();
        a->bot = pl_strdup(bot);
        a->next = accounts;
        accounts = a;
    }
    int64_t minute = now_ms / 60000, day = now_ms / 86400000;
    if (a->minute != minute) {
        a->minute = minute;
        a->requests = 0;
    }
    if (a->day != day) {
        a->day = day;
        a->tokens = 0;
    }
    return a;
}

int pl_llm_take(const char *bot, long requests_per_minute, long long tokens_per_day, int64_t now_ms,
                const char **reason) {
    pthread_mutex_lock(&lock);
    account *a = account_at(bot, now_ms);
    int rc = PL_OK;
    if (a->tokens >= tokens_per_day) {
        *reason = "budget";
        rc = PL_ERR;
    } else if (a->requests >= requests_per_minute) {
        *reason = "rate";
        rc = PL_ERR;
    } else {
        a->requests++;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void pl_llm_used(const char *bot, int64_t now_ms, long *requests, long long *tokens) {
    pthread_mutex_lock(&lock);
    account *a = account_at(bot, now_ms);
    *requests = a->requests;
    *tokens = a->tokens;
    pthread_mutex_unlock(&lock);
}

void pl_llm_reset(void) {
    pthread_mutex_lock(&lock);
    while (accounts) {
        account *a = accounts;
        accounts = a->next;
        free(a->bot);
        free(a);
    }
    pthread_mutex_unlock(&lock);
}

/* --- the counts ---------------------------------------------------------------- */

const char *const pl_llm_results[] = {"ok",       "empty",   "invalid", "http-error", "timeout", "unreachable",
                                      "refused",  "too-large", "rate",  "budget",     "no-key",  "error", NULL};

static pl_metric *requests_total, *tokens_total, *cache_hits_total, *latency_seconds;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    requests_total = pl_metric_counter("parley_llm_requests_total",
                                       "Asks of a bot's language model by how they ended (ok: a valid answer; "
                                       "rate, budget: not sent; the rest: failures)",
                                       "bot,result");
    tokens_total = pl_metric_counter("parley_llm_tokens_total", "Tokens the language model's answers used", "bot");
    cache_hits_total = pl_metric_counter("parley_llm_cache_hits_total",
                                         "Asks answered from the cache without calling the language model", "bot");
    latency_seconds = pl_metric_histogram("parley_llm_latency_seconds",
                                          "Time from sending a request to the language model to its end", "bot",
                                          pl_metric_seconds, pl_metric_seconds_count);
}

void pl_llm_metrics(void) { pthread_once(&once, make_metrics); }

void pl_llm_spend(const char *bot, long long tokens, int64_t now_ms) {
    if (tokens <= 0) return;
    pthread_mutex_lock(&lock);
    account_at(bot, now_ms)->tokens += tokens;
    pthread_mutex_unlock(&lock);
    pl_llm_metrics();
    pl_metric_add(tokens_total, (const char *[]){bot}, (double)tokens);
}

void pl_llm_count(const char *bot, const char *result) {
    const char *known = "error";
    for (size_t i = 0; pl_llm_results[i]; i++)
        if (result && strcmp(result, pl_llm_results[i]) == 0) known = pl_llm_results[i];
    pl_llm_metrics();
    pl_metric_add(requests_total, (const char *[]){bot, known}, 1);
}

void pl_llm_cache_hit(const char *bot) {
    pl_llm_metrics();
    pl_metric_add(cache_hits_total, (const char *[]){bot}, 1);
}

void pl_llm_latency(const char *bot, double seconds) {
    pl_llm_metrics();
    pl_metric_observe(latency_seconds, (const char *[]){bot}, seconds);
}
