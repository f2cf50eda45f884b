/* test_canned: the agent console's canned replies in a manifest
 * (core/canned.c): what load accepts, what it names when it refuses, and
 * which list a conversation's locale gets. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>

#include "check.h"
#include "core/canned.h"

static json_t *manifest(const char *canned_json) {
    char *text = NULL;
    if (asprintf(&text, "{\"name\": \"shop\", \"locales\": [\"en\", \"es\"], \"handoff\": {\"canned_replies\": %s}}",
                 canned_json) < 0)
        return NULL;
    json_t *m = json_loads(text, 0, NULL);
    free(text);
    return m;
}

/* NULL when accepted, else whether the message has want in it. */
static int refused_with(const char *canned_json, const char *want) {
    json_t *m = manifest(canned_json);
    char *why = pl_canned_check(m);
    int ok = why && strstr(why, want);
    if (why && !ok) printf("#   said: %s\n", why);
    free(why);
    json_decref(m);
    return ok;
}

TEST(accepted) {
    json_t *none = json_loads("{\"name\": \"shop\"}", 0, NULL);
    CHECK(pl_canned_check(none) == NULL);
    CHECK(pl_canned_for(none, "en") == NULL);
    json_decref(none);
    json_t *m = manifest("{\"en\": [{\"shortcut\": \"ready\", \"title\": \"Ready\", \"text\": \"Soon.\"}],"
                         " \"es\": [{\"shortcut\": \"listo\", \"text\": \"Pronto.\"}]}");
    CHECK(pl_canned_check(m) == NULL);
    json_decref(m);
    m = manifest("[{\"shortcut\": \"a-1_b\", \"text\": \"x\"}]");
    CHECK(pl_canned_check(m) == NULL);
    json_decref(m);
}

TEST(refused_with_the_place) {
    CHECK(refused_with("{\"en\": [{\"shortcut\": \"a\"}]}", "handoff.canned_replies.en[1].text must be"));
    CHECK(refused_with("{\"es\": [{\"shortcut\": \"a\", \"text\": \"\"}]}", "handoff.canned_replies.es[1].text must be"));
    CHECK(refused_with("[{\"shortcut\": \"Big\", \"text\": \"x\"}]", "handoff.canned_replies[1].shortcut must be"));
    CHECK(refused_with("[{\"shortcut\": \"\", \"text\": \"x\"}]", "handoff.canned_replies[1].shortcut must be"));
    CHECK(refused_with("[{\"shortcut\": \"abcdefghijabcdefghijabcdefghijabc\", \"text\": \"x\"}]", "shortcut must be"));
    CHECK(refused_with("[{\"shortcut\": \"a\", \"text\": \"x\", \"title\": 7}]", "handoff.canned_replies[1].title must be"));
    CHECK(refused_with("[{\"shortcut\": \"a\", \"text\": \"x\"}, {\"shortcut\": \"a\", \"text\": \"y\"}]",
                       "[2].shortcut \"a\" is also the shortcut of [1]"));
    CHECK(refused_with("{\"fr\": []}", "\"fr\" is not one of the bot's \"locales\""));
    CHECK(refused_with("{\"en\": {}}", "handoff.canned_replies.en must be a list"));
    CHECK(refused_with("[\"hello\"]", "handoff.canned_replies[1] must be an object"));
    CHECK(refused_with("7", "handoff.canned_replies must be a list"));
    json_t *m = json_loads("{\"name\": \"shop\", \"handoff\": []}", 0, NULL);
    char *why = pl_canned_check(m);
    CHECK(why && strstr(why, "\"handoff\" must be an object"));
    free(why);
    json_decref(m);
    /* text at its limit is fine, one byte more is not */
    char *text = malloc(PL_CANNED_MAX_TEXT + 2);
    memset(text, 'x', PL_CANNED_MAX_TEXT + 1);
    text[PL_CANNED_MAX_TEXT + 1] = '\0';
    json_t *r = json_pack("[{s:s, s:s%}]", "shortcut", "a", "text", text, (size_t)PL_CANNED_MAX_TEXT);
    m = json_pack("{s:s, s:{s:O}}", "name", "shop", "handoff", "canned_replies", r);
    CHECK(pl_canned_check(m) == NULL);
    json_decref(m);
    json_decref(r);
    r = json_pack("[{s:s, s:s}]", "shortcut", "a", "text", text);
    m = json_pack("{s:s, s:{s:O}}", "name", "shop", "handoff", "canned_replies", r);
    why = pl_canned_check(m);
    CHECK(why != NULL);
    free(why);
    json_decref(m);
    json_decref(r);
    free(text);
}

/* A bot without "locales" speaks English: "en" is its one locale. */
TEST(english_without_locales) {
    json_t *m = json_loads("{\"name\": \"shop\", \"handoff\": {\"canned_replies\": {\"en\": []}}}", 0, NULL);
    CHECK(pl_canned_check(m) == NULL);
    json_decref(m);
}

TEST(chosen_by_locale) {
    json_t *m = manifest("{\"en\": [{\"shortcut\": \"ready\", \"text\": \"Soon.\"}],"
                         " \"es\": [{\"shortcut\": \"listo\", \"text\": \"Pronto.\"}]}");
    const json_t *es = pl_canned_for(m, "es");
    CHECK_STR(json_string_value(json_object_get(json_array_get(es, 0), "shortcut")), "listo");
    const json_t *other = pl_canned_for(m, "ja"); /* the bot's first locale's */
    CHECK_STR(json_string_value(json_object_get(json_array_get(other, 0), "shortcut")), "ready");
    CHECK(pl_canned_for(m, NULL) == other);
    json_decref(m);
    m = manifest("[{\"shortcut\": \"all\", \"text\": \"Every locale.\"}]");
    CHECK_STR(json_string_value(json_object_get(json_array_get(pl_canned_for(m, "es"), 0), "shortcut")), "all");
    json_decref(m);
}

int main(void) {
    RUN(accepted);
    RUN(refused_with_the_place);
    RUN(english_without_locales);
    RUN(chosen_by_locale);
    return check_done();
}
