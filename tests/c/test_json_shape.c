/* test_json_shape: path rules over JSON documents (json_shape.c): types at
 * keys, in each element of an array and each member of an object, required
 * fields, the place named in the message, and what is never looked at. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/json_shape.h"
#include "check.h"

static const pl_shape_rule rules[] = {
    {"entry", PL_SHAPE_ARRAY | PL_SHAPE_REQUIRED},
    {"entry[]", PL_SHAPE_OBJECT},
    {"entry[].changes", PL_SHAPE_ARRAY},
    {"entry[].changes[]", PL_SHAPE_OBJECT},
    {"entry[].changes[].field", PL_SHAPE_STRING | PL_SHAPE_REQUIRED},
    {"entry[].time", PL_SHAPE_INTEGER | PL_SHAPE_STRING},
    {"slots", PL_SHAPE_OBJECT},
    {"slots.*", PL_SHAPE_OBJECT},
    {"slots.*.value", PL_SHAPE_STRING | PL_SHAPE_NULL},
    {"user", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
};

/* The message text is refused with (new), or NULL when it passes. */
static char *refusal(const char *text, const char *where) {
    json_t *doc = json_loads(text, 0, NULL);
    char *err = NULL;
    int rc = pl_json_shape_check(doc, where, rules, sizeof rules / sizeof *rules, &err);
    json_decref(doc);
    if (rc == PL_OK && err) printf("#   passed with a message: %s\n", err);
    if (rc != PL_OK && !err) return pl_strdup("(failed without a message)");
    return rc == PL_OK ? NULL : err;
}

static int refused_with(const char *text, const char *message) {
    char *err = refusal(text, NULL);
    int ok = err && strcmp(err, message) == 0;
    if (!ok) printf("#   %s -> %s (expected %s)\n", text, err ? err : "(passed)", message);
    free(err);
    return ok;
}

static int passes(const char *text) {
    char *err = refusal(text, NULL);
    if (err) printf("#   %s -> %s\n", text, err);
    free(err);
    return err == NULL;
}

TEST(good_shapes_and_extra_fields_pass) {
    CHECK(passes("{\"entry\": []}"));
    CHECK(passes("{\"entry\": [{\"changes\": [{\"field\": \"messages\", \"value\": 7}], \"time\": 1, \"x\": [1]}],"
                 " \"other\": null}"));
    CHECK(passes("{\"entry\": [{\"time\": \"1\"}, {}], \"slots\": {\"a\": {\"value\": \"x\"}, \"b\": {}, "
                 "\"c\": {\"value\": null}}}"));
}

TEST(wrong_types_are_named_where_they_are) {
    CHECK(refused_with("{\"entry\": {}}", "entry must be an array"));
    CHECK(refused_with("{\"entry\": null}", "entry must be an array"));
    CHECK(refused_with("{\"entry\": [{}, 3]}", "entry[1] must be an object"));
    CHECK(refused_with("{\"entry\": [{\"changes\": \"x\"}]}", "entry[0].changes must be an array"));
    CHECK(refused_with("{\"entry\": [{\"changes\": [{\"field\": \"a\"}, {\"field\": 1}]}]}",
                       "entry[0].changes[1].field must be a string"));
    CHECK(refused_with("{\"entry\": [{\"time\": 1.5}]}", "entry[0].time must be a string or an integer"));
    CHECK(refused_with("{\"entry\": [], \"slots\": {\"a\": {}, \"b\": []}}", "slots.b must be an object"));
    CHECK(refused_with("{\"entry\": [], \"slots\": {\"a\": {\"value\": false}}}",
                       "slots.a.value must be a string or null"));
    CHECK(refused_with("{\"entry\": [], \"user\": \"\"}", "user must be a non-empty string"));
    CHECK(refused_with("{\"entry\": [], \"user\": 7}", "user must be a non-empty string"));
    CHECK(passes("{\"entry\": [], \"user\": \"u\"}"));
}

TEST(required_fields_where_their_parent_is) {
    CHECK(refused_with("{}", "entry is missing (an array)"));
    CHECK(refused_with("{\"entry\": [{\"changes\": [{}]}]}", "entry[0].changes[0].field is missing (a string)"));
    CHECK(passes("{\"entry\": [{}]}")); /* no changes: nothing to require inside */
}

TEST(the_first_rule_broken_is_reported_and_inner_ones_wait_for_it) {
    /* entry is not an array: the rules inside it do not run on its members */
    CHECK(refused_with("{\"entry\": {\"0\": {\"changes\": 1}}}", "entry must be an array"));
    char *err = refusal("{\"entry\": [{\"changes\": [7]}]}", "entry[3].changes[1].value");
    CHECK_STR(err, "entry[3].changes[1].value.entry[0].changes[0] must be an object");
    free(err);
}

TEST(long_or_deep_names_stay_whole_characters) {
    char name[200] = "";
    for (int i = 0; i < 30; i++) strcat(name, "ラ"); /* 90 bytes */
    char *doc = pl_strdupf("{\"entry\": [], \"slots\": {\"%s\": 1}}", name);
    char *err = refusal(doc, NULL);
    CHECK(err && strncmp(err, "slots.", 6) == 0 && strstr(err, " must be an object"));
    /* 40 bytes at most, cut before a character: 13 of them */
    CHECK(err && strstr(err, " must") - (err + 6) == 39);
    free(err);
    free(doc);
    char deep[400];
    memset(deep, 'x', 299);
    deep[299] = '\0';
    err = refusal("{\"entry\": 1}", deep);
    CHECK(err && strlen(err) < 320 && strstr(err, "must be an array"));
    free(err);
}

int main(void) {
    RUN(good_shapes_and_extra_fields_pass);
    RUN(wrong_types_are_named_where_they_are);
    RUN(required_fields_where_their_parent_is);
    RUN(the_first_rule_broken_is_reported_and_inner_ones_wait_for_it);
    RUN(long_or_deep_names_stay_whole_characters);
    return check_done();
}
