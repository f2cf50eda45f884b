/* test_rest: the HTTP API's message body (rest.c) read from its text: each
 * 400 of README's table with its reason, and the fields of a good body. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "check.h"
#include "http/rest.h"

/* The reason text is refused with (new), or NULL when it makes a message. */
static char *refusal(const char *text) {
    char *reason = NULL;
    pl_message *msg = pl_rest_parse_message("barista", text, strlen(text), &reason);
    pl_message_free(msg);
    return reason;
}

static int refused_with(const char *text, const char *words) {
    char *reason = refusal(text);
    int ok = reason && strstr(reason, words);
    if (!ok) printf("#   %s -> %s\n", text, reason ? reason : "(accepted)");
    free(reason);
    return ok;
}

TEST(a_good_body_is_a_message) {
    const char *body = "{\"user\":\"ada\",\"text\":\"a large latte\",\"locale\":\"en\",\"extra\":1}";
    char *reason = NULL;
    pl_message *msg = pl_rest_parse_message("barista", body, strlen(body), &reason);
    CHECK(msg != NULL && reason == NULL);
    if (msg) {
        CHECK_STR(msg->bot, "barista");
        CHECK_STR(msg->channel, "rest");
        CHECK_STR(msg->user, "ada");
        CHECK_STR(msg->text, "a large latte");
        CHECK_STR(msg->locale, "en");
        CHECK(msg->payload == NULL);
    }
    pl_message_free(msg);
    body = "{\"user\":\"ada\",\"payload\":\"croissant\",\"text\":null}";
    msg = pl_rest_parse_message("barista", body, strlen(body), &reason);
    CHECK(msg && msg->text == NULL);
    if (msg) CHECK_STR(msg->payload, "croissant");
    pl_message_free(msg);
}

TEST(bodies_that_are_not_a_json_object) {
    char *reason = NULL;
    CHECK(pl_rest_parse_message("b", NULL, 0, &reason) == NULL);
    CHECK(reason && strstr(reason, "empty"));
    free(reason);
    CHECK(refused_with("{\"user\":", "not valid JSON"));
    CHECK(refused_with("[1,2]", "must be a JSON object"));
    CHECK(refused_with("{\"user\":\"a\\u0000b\",\"text\":\"x\"}", "NUL"));
}

TEST(fields_of_the_wrong_kind_or_size) {
    CHECK(refused_with("{\"text\":\"hi\"}", "\"user\" must be a non-empty string"));
    CHECK(refused_with("{\"user\":7,\"text\":\"hi\"}", "\"user\" must be"));
    CHECK(refused_with("{\"user\":\"\",\"text\":\"hi\"}", "\"user\" must be"));
    CHECK(refused_with("{\"user\":\"ada\",\"text\":5}", "\"text\" must be a string"));
    CHECK(refused_with("{\"user\":\"ada\",\"payload\":[]}", "\"payload\" must be a string"));
    CHECK(refused_with("{\"user\":\"ada\",\"text\":\"hi\",\"locale\":{}}", "\"locale\" must be"));
    CHECK(refused_with("{\"user\":\"ada\"}", "send \"text\" or \"payload\""));
    char *user = calloc(1, 300), *text = calloc(1, 5000);
    memset(user, 'u', 257);
    memset(text, 't', 4097);
    char *body = pl_strdupf("{\"user\":\"%s\",\"text\":\"hi\"}", user);
    CHECK(refused_with(body, "longer than 256"));
    free(body);
    body = pl_strdupf("{\"user\":\"ada\",\"text\":\"%s\"}", text);
    CHECK(refused_with(body, "\"text\" is too long"));
    free(body);
    text[4096] = '\0';
    body = pl_strdupf("{\"user\":\"ada\",\"text\":\"%s\"}", text);
    char *reason = refusal(body);
    CHECK(reason == NULL);
    free(reason);
    free(body);
    free(user);
    free(text);
}

TEST(an_error_answer_is_json_whatever_the_reason_holds) {
    static const char *const reasons[] = {"no bot named '\xff' here", "\xC3", "\xED\xA0\x80 (a surrogate)",
                                          "caf\xC3\xA9 ☕", ""};
    static const char *const said[] = {"no bot named '\xEF\xBF\xBD' here", "\xEF\xBF\xBD",
                                       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD (a surrogate)", "caf\xC3\xA9 ☕", ""};
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        json_t *answer = pl_rest_error(reasons[i]);
        CHECK(answer != NULL);
        CHECK_STR(json_string_value(json_object_get(answer, "error")), said[i]);
        json_decref(answer);
    }
}

int main(void) {
    RUN(a_good_body_is_a_message);
    RUN(bodies_that_are_not_a_json_object);
    RUN(fields_of_the_wrong_kind_or_size);
    RUN(an_error_answer_is_json_whatever_the_reason_holds);
    return check_done();
}
