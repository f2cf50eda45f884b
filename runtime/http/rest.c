/* rest: a rest-channel message body read and validated; see rest.h.
 * The limits are the HTTP API's (rest.h); JSON is jansson's, UTF-8
 * repair text.c's. */
#define _GNU_SOURCE
#include "rest.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/text.h"

json_t *pl_rest_json_object(const char *data, size_t len, char **reason) {
    json_error_t jerr;
    json_t *body = len ? json_loadb(data, len, 0, &jerr) : NULL;
    if (!len) *reason = pl_strdup("the body is empty; send a JSON object");
    else if (!body && strstr(jerr.text, "\\u0000"))
        *reason = pl_strdup("strings may not contain NUL characters (\\u0000)");
    else if (!body) *reason = pl_strdupf("the body is not valid JSON: %s (line %d)", jerr.text, jerr.line);
    else if (!json_is_object(body)) *reason = pl_strdup("the body must be a JSON object");
    else return body;
    json_decref(body);
    return NULL;
}

/* An optional string field: NULL when absent or null; when present but not
 * a string, or longer than max bytes, *bad says what is wrong with it. */
static const char *optional_string(const json_t *body, const char *key, size_t max, const char **bad) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) *bad = "must be a string";
    else if (json_string_length(v) > max) *bad = "is too long";
    return json_is_string(v) ? json_string_value(v) : NULL;
}

pl_message *pl_rest_message(const char *bot, const json_t *body, char **reason) {
    const char *bad = NULL;
    json_t *user = json_object_get(body, "user");
    if (!json_is_string(user) || json_string_length(user) == 0) {
        *reason = pl_strdup("\"user\" must be a non-empty string");
        return NULL;
    }
    if (json_string_length(user) > PL_MAX_ID) {
        *reason = pl_strdupf("\"user\" is longer than %d bytes", PL_MAX_ID);
        return NULL;
    }
    const char *text = optional_string(body, "text", PL_MAX_TEXT, &bad);
    if (bad) {
        *reason = pl_strdupf("\"text\" %s (at most %d bytes)", bad, PL_MAX_TEXT);
        return NULL;
    }
    const char *payload = optional_string(body, "payload", 1024, &bad);
    if (bad) {
        *reason = pl_strdupf("\"payload\" %s (at most 1024 bytes)", bad);
        return NULL;
    }
    const char *locale = optional_string(body, "locale", 35, &bad);
    if (bad) {
        *reason = pl_strdupf("\"locale\" %s (a language tag such as \"en\" or \"ja\")", bad);
        return NULL;
    }
    if (!text && !payload) {
        *reason = pl_strdup("send \"text\" or \"payload\"");
        return NULL;
    }
    pl_message *msg = pl_message_new(bot, "rest", json_string_value(user));
    msg->text = text ? pl_strdup(text) : NULL;
    msg->payload = payload ? pl_strdup(payload) : NULL;
    msg->locale = locale ? pl_strdup(locale) : NULL;
    return msg;
}

pl_message *pl_rest_parse_message(const char *bot, const char *data, size_t len, char **reason) {
    json_t *body = pl_rest_json_object(data, len, reason);
    if (!body) return NULL;
    pl_message *msg = pl_rest_message(bot, body, reason);
    json_decref(body);
    return msg;
}

json_t *pl_rest_error(const char *reason) {
    char *text = pl_text_valid_utf8(reason ? reason : "");
    json_t *answer = json_pack("{s:s}", "error", text);
    free(text);
    return answer;
}
