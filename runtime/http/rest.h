/* rest: the body of the HTTP API's POST /v1/bots/{bot}/messages read from
 * its text: a JSON object, then a validated message, or the reason to
 * answer 400 with. Plain C over bytes (no evhttp, no bot), so server.c, a C
 * test and a fuzz target call the same code. The 413 for a body over
 * PL_MAX_BODY is server.c's, decided before any of this runs. The limits
 * of the whole HTTP API are here, at the bottom of its files. */
#ifndef PL_REST_H
#define PL_REST_H

#include <jansson.h>
#include <stddef.h>

#include "core/turn.h"

/* Limits of the HTTP API. */
#define PL_MAX_BODY (64 * 1024)
#define PL_HARD_MAX_BODY (256 * 1024)
/* A webhook that takes files (pl_channel_adapter.takes_files: the email
 * channel's mail with attachments): PARLEY_EMAIL_MAX_BODY, by default this. */
#define PL_FILES_MAX_BODY (32 * 1024 * 1024)
#define PL_MAX_TEXT 4096
#define PL_MAX_ID 256

/* data[0..len) as a JSON object (new reference), or NULL with *reason (new
 * string) saying why it is not one: empty, not JSON, a \u0000 in a string,
 * not an object. data may be NULL when len is 0. */
json_t *pl_rest_json_object(const char *data, size_t len, char **reason);

/* The message a body object (borrowed) asks for, on the rest channel of
 * bot: new, or NULL with *reason (new) naming the field that is wrong. */
pl_message *pl_rest_message(const char *bot, const json_t *body, char **reason);

/* Both steps: body text to a new message, or NULL with *reason (new). */
pl_message *pl_rest_parse_message(const char *bot, const char *data, size_t len, char **reason);

/* The answer to a refused request: {"error": reason} (new). A reason may
 * quote what the client sent (a path segment, a header), which can be any
 * bytes, so it is made valid UTF-8 first: JSON cannot carry anything else,
 * and jansson would make no answer at all. */
json_t *pl_rest_error(const char *reason);

#endif
