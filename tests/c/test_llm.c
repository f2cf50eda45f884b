/* test_llm: a bot's language model on the C side (core/llm.c): what the
 * manifest check accepts and what it names when it refuses, the settings'
 * defaults, and each bot's rate per clock minute and token budget per day,
 * kept apart per bot and shared by threads. */
#define _GNU_SOURCE
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "base/common.h"
#include "core/llm.h"

static json_t *manifest(const char *llm_json) {
    char *text = NULL;
    if (asprintf(&text, "{\"name\": \"shop\", \"understanding\": {\"llm\": %s}}", llm_json) < 0) return NULL;
    json_t *m = json_loads(text, 0, NULL);
    free(text);
    return m;
}

#define GOOD "\"base_url\": \"https://api.openai.com/v1\", \"model\": \"gpt-4o-mini\""

/* Whether the check refuses llm_json with a message that has want in it. */
static int refused_with(const char *llm_json, const char *want) {
    json_t *m = manifest(llm_json);
    char *why = pl_llm_check_manifest(m);
    int ok = why && strstr(why, want);
    if (!ok) printf("#   %s: said %s\n", llm_json, why ? why : "nothing");
    free(why);
    json_decref(m);
    return ok;
}

TEST(accepted) {
    json_t *none = json_loads("{\"name\": \"shop\"}", 0, NULL);
    CHECK(pl_llm_check_manifest(none) == NULL);
    CHECK(pl_llm_settings(none) == NULL);
    json_decref(none);
    json_t *m = manifest("{" GOOD ", \"api_key_env\": \"SHOP_LLM_KEY\", \"timeout_ms\": 500, "
                         "\"requests_per_minute\": 5, \"tokens_per_day\": 100, \"cache_entries\": 0, "
                         "\"redact\": [\"email\"]}");
    CHECK(pl_llm_check_manifest(m) == NULL);
    json_t *s = pl_llm_settings(m);
    CHECK(json_integer_value(json_object_get(s, "timeout_ms")) == 500);
    CHECK(json_integer_value(json_object_get(s, "cache_entries")) == 0);
    CHECK(json_is_true(json_object_get(json_object_get(s, "redact"), "email")));
    CHECK(json_object_get(json_object_get(s, "redact"), "phone") == NULL);
    json_decref(s);
    json_decref(m);
    json_t *loopback = manifest("{\"base_url\": \"http://127.0.0.1:8080/v1/\", \"model\": \"local\"}");
    CHECK(pl_llm_check_manifest(loopback) == NULL);
    json_decref(loopback);
}

TEST(defaults) {
    json_t *m = manifest("{" GOOD "}");
    json_t *s = pl_llm_settings(m);
    CHECK(json_integer_value(json_object_get(s, "timeout_ms")) == PL_LLM_TIMEOUT_MS);
    CHECK(json_integer_value(json_object_get(s, "requests_per_minute")) == PL_LLM_REQUESTS_PER_MINUTE);
    CHECK(json_integer_value(json_object_get(s, "tokens_per_day")) == PL_LLM_TOKENS_PER_DAY);
    CHECK(json_integer_value(json_object_get(s, "cache_entries")) == PL_LLM_CACHE_ENTRIES);
    /* what the bot does not say is taken out */
    CHECK(json_is_true(json_object_get(json_object_get(s, "redact"), "phone")));
    CHECK(json_is_true(json_object_get(json_object_get(s, "redact"), "email")));
    json_decref(s);
    json_decref(m);
}

TEST(refused) {
    json_t *m = json_loads("{\"understanding\": []}", 0, NULL);
    char *why = pl_llm_check_manifest(m);
    CHECK(why && strstr(why, "\"understanding\" must be an object"));
    free(why);
    json_decref(m);
    CHECK(refused_with("\"gpt\"", "\"llm\" must be an object"));
    CHECK(refused_with("{\"model\": \"m\"}", "\"base_url\" must be the http(s) URL"));
    CHECK(refused_with("{\"base_url\": \"ftp://models.example/v1\", \"model\": \"m\"}", "\"base_url\""));
    CHECK(refused_with("{\"base_url\": \"https://user@models.example/v1\", \"model\": \"m\"}", "\"base_url\""));
    CHECK(refused_with("{\"base_url\": \"https://models.example/v1?x=1\", \"model\": \"m\"}", "no query"));
    CHECK(refused_with("{\"base_url\": \"https://models.example/v1\"}", "\"model\" must name the model"));
    CHECK(refused_with("{" GOOD ", \"api_key_env\": 3}", "\"api_key_env\" must be the name"));
    CHECK(refused_with("{" GOOD ", \"timeout_ms\": 20000}", "\"timeout_ms\" must be a whole number from 100 to 10000"));
    CHECK(refused_with("{" GOOD ", \"timeout_ms\": 1.5}", "\"timeout_ms\""));
    CHECK(refused_with("{" GOOD ", \"requests_per_minute\": 0}", "\"requests_per_minute\""));
    CHECK(refused_with("{" GOOD ", \"tokens_per_day\": -1}", "\"tokens_per_day\""));
    CHECK(refused_with("{" GOOD ", \"cache_entries\": 1000000}", "\"cache_entries\""));
    CHECK(refused_with("{" GOOD ", \"redact\": \"phone\"}", "\"redact\" must be a list"));
    CHECK(refused_with("{" GOOD ", \"redact\": [\"phone\", \"names\"]}", "\"redact\"[1] must be \"phone\" or \"email\""));
}

#define MINUTE 60000LL
#define DAY 86400000LL

TEST(rate_per_minute) {
    pl_llm_reset();
    int64_t t = 100 * DAY + 5 * MINUTE; /* the start of a minute */
    const char *reason = NULL;
    for (int i = 0; i < 3; i++) CHECK(pl_llm_take("shop", 3, 1000, t + i * 1000, &reason) == PL_OK);
    CHECK(pl_llm_take("shop", 3, 1000, t + 59999, &reason) == PL_ERR);
    CHECK_STR(reason, "rate");
    /* another bot has a rate of its own */
    CHECK(pl_llm_take("cafe", 3, 1000, t, &reason) == PL_OK);
    /* the next minute on the clock */
    CHECK(pl_llm_take("shop", 3, 1000, t + MINUTE, &reason) == PL_OK);
    long requests;
    long long tokens;
    pl_llm_used("shop", t + MINUTE, &requests, &tokens);
    CHECK(requests == 1 && tokens == 0);
}

TEST(tokens_per_day) {
    pl_llm_reset();
    int64_t t = 200 * DAY + 3600000; /* one in the morning, UTC */
    const char *reason = NULL;
    CHECK(pl_llm_take("shop", 100, 1000, t, &reason) == PL_OK);
    pl_llm_spend("shop", 600, t);
    CHECK(pl_llm_take("shop", 100, 1000, t + 1, &reason) == PL_OK);
    pl_llm_spend("shop", 600, t + 1);
    CHECK(pl_llm_take("shop", 100, 1000, t + 2, &reason) == PL_ERR);
    CHECK_STR(reason, "budget");
    CHECK(pl_llm_take("cafe", 100, 1000, t + 2, &reason) == PL_OK);
    /* midnight UTC: a new day's budget */
    CHECK(pl_llm_take("shop", 100, 1000, 201 * DAY, &reason) == PL_OK);
    long requests;
    long long tokens;
    pl_llm_used("shop", 201 * DAY, &requests, &tokens);
    CHECK(tokens == 0);
}

static void *take_many(void *arg) {
    int64_t t = *(int64_t *)arg;
    const char *reason;
    for (int i = 0; i < 1000; i++) {
        pl_llm_take("busy", 100000, 1LL << 40, t, &reason);
        pl_llm_spend("busy", 1, t);
    }
    return NULL;
}

/* Turn threads share one account per bot: no request or token is lost. */
TEST(threads_share) {
    pl_llm_reset();
    int64_t t = 300 * DAY;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, take_many, &t);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    long requests;
    long long tokens;
    pl_llm_used("busy", t, &requests, &tokens);
    CHECK(requests == 4000);
    CHECK(tokens == 4000);
    pl_llm_reset();
}

int main(void) {
    RUN(accepted);
    RUN(defaults);
    RUN(refused);
    RUN(rate_per_minute);
    RUN(tokens_per_day);
    RUN(threads_share);
    return check_done();
}
