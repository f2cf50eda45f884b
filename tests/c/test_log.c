/* test_log: base/log.c — the redaction every line goes through (bearer and
 * basic credentials, secret-named parameters, card numbers that pass the
 * Luhn check, and what must be left alone), the text and JSON lines, and
 * what a JSON line on stderr carries: the thread's bot and channel, a
 * "[bot] " prefix, and file and line of a script's error. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "check.h"

/* text, redacted (in a static buffer). */
static const char *redacted(const char *text) {
    static char out[1024];
    pl_log_redact(text, out, sizeof out);
    return out;
}

TEST(redacts_credentials) {
    CHECK_STR(redacted("Authorization: Bearer abc.DEF-123_x~+/="), "Authorization: Bearer [redacted]");
    CHECK_STR(redacted("authorization: bearer sk_live_51H8 and more"), "authorization: bearer [redacted] and more");
    CHECK_STR(redacted("Basic dXNlcjpwYXNz"), "Basic [redacted]");
    /* the name of a variable in an answer is no credential */
    CHECK_STR(redacted("a valid \"Authorization: Bearer <PARLEY_ADMIN_TOKEN>\" is required"),
              "a valid \"Authorization: Bearer <PARLEY_ADMIN_TOKEN>\" is required");
    CHECK_STR(redacted("the bearer of bad news"), "the bearer [redacted] bad news");
}

TEST(redacts_secret_parameters) {
    CHECK_STR(redacted("GET /hook?hub.mode=subscribe&hub.verify_token=s3cr3t&hub.challenge=42"),
              "GET /hook?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=42");
    CHECK_STR(redacted("access_token=EAAB key=xyz api-key=1 apikey=2 client_secret=3 password=p signature=ab"),
              "access_token=[redacted] key=[redacted] api-key=[redacted] apikey=[redacted] client_secret=[redacted] "
              "password=[redacted] signature=[redacted]");
    CHECK_STR(redacted("/pay?order=7&token=abc\"x"), "/pay?order=7&token=[redacted]\"x");
    /* names that only end in the letters, and empty values, stay */
    CHECK_STR(redacted("monkey=banana tokens=3 keys=4 token= key"), "monkey=banana tokens=3 keys=4 token= key");
}

TEST(redacts_card_numbers) {
    CHECK_STR(redacted("card 4242424242424242 declined"), "card [redacted] declined");
    CHECK_STR(redacted("4242 4242 4242 4242"), "[redacted]");
    CHECK_STR(redacted("amex 3782-822463-10005."), "amex [redacted].");
    CHECK_STR(redacted("(5555555555554444)"), "([redacted])");
    CHECK_STR(redacted("13 digits 4222222222222 and 19 6011000990139424000"), "13 digits [redacted] and 19 6011000990139424000");
    CHECK_STR(redacted("6011 0009 9013 9424"), "[redacted]");
    /* what is no card stays: a failed Luhn check, too few or too many
     * digits, digits inside a word, small groups, mixed separators */
    CHECK_STR(redacted("card 4242424242424241 declined"), "card 4242424242424241 declined");
    CHECK_STR(redacted("order 12345 of 424242424242"), "order 12345 of 424242424242");
    CHECK_STR(redacted("42424242424242424242"), "42424242424242424242");
    CHECK_STR(redacted("id a4242424242424242 b4242424242424242c 4242424242424242x"),
              "id a4242424242424242 b4242424242424242c 4242424242424242x");
    CHECK_STR(redacted("424 242 424 242 424 2"), "424 242 424 242 424 2");
    CHECK_STR(redacted("4242 4242-4242 4242"), "4242 4242-4242 4242");
    CHECK_STR(redacted("the 1st of 3"), "the 1st of 3");
}

TEST(redaction_counts_and_truncates) {
    char out[16];
    CHECK(pl_log_redact("Bearer x 4242424242424242", out, sizeof out) == 2);
    CHECK_STR(out, "Bearer [redacte");
    CHECK(pl_log_redact("nothing here", out, sizeof out) == 0);
    CHECK_STR(out, "nothing here");
    CHECK(pl_log_redact("", out, sizeof out) == 0);
    CHECK_STR(out, "");
}

TEST(text_line) {
    char *line = pl_log_format_line(PL_LOG_TEXT, 1700000000123LL, PL_LOG_WARN, NULL, "disk \"full\"");
    CHECK_STR(line, "2023-11-14T22:13:20.123Z WARN  disk \"full\"");
    free(line);
}

TEST(json_line) {
    pl_log_fields f = {.bot = "shop", .channel = "telegram", .script_error = "flows/main.lua:12: attempt to index a nil value"};
    char *line = pl_log_format_line(PL_LOG_JSON, 1700000000123LL, PL_LOG_ERROR, &f,
                                    "[shop] telegram/42: turn failed: flows/main.lua:12: \"x\"\n\ttraceback");
    CHECK(strchr(line, '\n') == NULL);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "time")), "2023-11-14T22:13:20.123Z");
    CHECK_STR(json_string_value(json_object_get(j, "level")), "error");
    CHECK_STR(json_string_value(json_object_get(j, "message")),
              "[shop] telegram/42: turn failed: flows/main.lua:12: \"x\"\n\ttraceback");
    CHECK_STR(json_string_value(json_object_get(j, "bot")), "shop");
    CHECK_STR(json_string_value(json_object_get(j, "channel")), "telegram");
    CHECK_STR(json_string_value(json_object_get(j, "file")), "flows/main.lua");
    CHECK(json_integer_value(json_object_get(j, "line")) == 12);
    CHECK(json_object_size(j) == 7);
    json_decref(j);
    free(line);

    /* nothing known beyond the message; text that is not UTF-8 */
    line = pl_log_format_line(PL_LOG_JSON, 0, PL_LOG_INFO, NULL, "caf\xe9 ok");
    j = json_loads(line, 0, &e);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "message")), "caf\xef\xbf\xbd ok");
    CHECK(json_object_size(j) == 3);
    json_decref(j);
    free(line);

    /* an error with no position names no file */
    pl_log_fields no_position = {.script_error = "memory budget of 16 MB exceeded"};
    line = pl_log_format_line(PL_LOG_JSON, 0, PL_LOG_ERROR, &no_position, "x");
    j = json_loads(line, 0, &e);
    CHECK(j && !json_object_get(j, "file") && !json_object_get(j, "line"));
    json_decref(j);
    free(line);
}

/* What pl_log writes to stderr while fn runs: a file stands in for it. */
static char *stderr_of(void (*fn)(void)) {
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long size = ftell(tmp);
    rewind(tmp);
    char *text = calloc(1, (size_t)size + 1);
    if (fread(text, 1, (size_t)size, tmp) != (size_t)size) text[0] = '\0';
    fclose(tmp);
    return text;
}

static void log_some_json(void) {
    pl_log_set_format(PL_LOG_JSON);
    pl_log_fields outer = pl_log_set_context("shop", "rest");
    pl_info("a turn's line with Bearer abc123");
    pl_log_with(PL_LOG_ERROR, &(pl_log_fields){.script_error = "scripts/tone.lua:3: boom"}, "failed: %s",
                "scripts/tone.lua:3: boom");
    pl_log_restore_context(outer);
    pl_warn("[cafe] whatsapp/1: card 4242424242424242 refused");
    pl_info("no bot here");
    pl_debug("below the level: not written");
    pl_log_set_format(PL_LOG_TEXT);
}

TEST(json_lines_on_stderr) {
    char *text = stderr_of(log_some_json);
    json_t *lines[4] = {0};
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < 5; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        CHECK(j != NULL);
        if (n < 4) lines[n] = j;
        else json_decref(j);
        n++;
    }
    CHECK(n == 4);
    if (n == 4) {
        CHECK_STR(json_string_value(json_object_get(lines[0], "message")), "a turn's line with Bearer [redacted]");
        CHECK_STR(json_string_value(json_object_get(lines[0], "bot")), "shop");
        CHECK_STR(json_string_value(json_object_get(lines[0], "channel")), "rest");
        CHECK_STR(json_string_value(json_object_get(lines[1], "level")), "error");
        CHECK_STR(json_string_value(json_object_get(lines[1], "bot")), "shop");
        CHECK_STR(json_string_value(json_object_get(lines[1], "file")), "scripts/tone.lua");
        CHECK(json_integer_value(json_object_get(lines[1], "line")) == 3);
        CHECK_STR(json_string_value(json_object_get(lines[2], "message")), "[cafe] whatsapp/1: card [redacted] refused");
        CHECK_STR(json_string_value(json_object_get(lines[2], "bot")), "cafe");
        CHECK(json_object_get(lines[2], "channel") == NULL);
        CHECK(json_object_get(lines[3], "bot") == NULL);
    }
    for (int i = 0; i < 4; i++) json_decref(lines[i]);
    free(text);
}

static void log_some_text(void) { pl_warn("[cafe] GET /x?access_token=EAAB1 failed"); }

TEST(text_lines_redacted_too) {
    char *text = stderr_of(log_some_text);
    CHECK(strstr(text, " WARN  [cafe] GET /x?access_token=[redacted] failed\n") != NULL);
    CHECK(strstr(text, "EAAB1") == NULL);
    free(text);
}

TEST(formats_parsed) {
    CHECK(pl_log_parse_format("text") == PL_LOG_TEXT);
    CHECK(pl_log_parse_format("json") == PL_LOG_JSON);
    CHECK(pl_log_parse_format("JSON") == -1);
    CHECK(pl_log_parse_format("") == -1);
}

/* Only a path of a bot's .lua file and a line pass for a script's position:
 * an error whose text a shopper wrote never does. */
TEST(script_positions) {
    long line = 0;
    char *file = pl_log_script_position("flows/main.lua:12: attempt to index a nil value", &line);
    CHECK_STR(file, "flows/main.lua");
    CHECK(line == 12);
    free(file);
    static const char *const not_positions[] = {
        "card 4242 4242 4242 4242:1: boom", "my name is Ana:7:", "memory budget exceeded", "flows/main.lua: no line",
        "flows/main.lua:0: zero", "a b.lua:3: spaces", NULL};
    for (int i = 0; not_positions[i]; i++) CHECK(pl_log_script_position(not_positions[i], &line) == NULL);
}

static void log_cut_card(void) {
    char long_text[2100];
    memset(long_text, 'x', sizeof long_text);
    /* a card number that the 2,048-byte cut splits */
    memcpy(long_text + 2030, "4242 4242 4242 4242", 19);
    long_text[2099] = '\0';
    pl_warn("%s", long_text);
}

TEST(a_cut_line_keeps_no_start_of_a_card) {
    char *text = stderr_of(log_cut_card);
    CHECK(text && !strstr(text, "4242 42"));
    CHECK(text && strstr(text, "xxxx") != NULL);
    free(text);
}

int main(void) {
    RUN(redacts_credentials);
    RUN(redacts_secret_parameters);
    RUN(redacts_card_numbers);
    RUN(redaction_counts_and_truncates);
    RUN(text_line);
    RUN(json_line);
    RUN(json_lines_on_stderr);
    RUN(text_lines_redacted_too);
    RUN(formats_parsed);
    RUN(script_positions);
    RUN(a_cut_line_keeps_no_start_of_a_card);
    return check_done();
}
