/* log: the one log stream of a parley process.
 *
 * Lines go to stderr as "TIME LEVEL message", or (parley serve --log-format
 * json) as one JSON object a line: {"time", "level", "message"} and, when
 * known, "bot", "channel", and for a script's error "file" and "line". A
 * sink can be added (parley chat shows warnings and errors in the
 * conversation) and tests read the stream to assert on what was logged.
 *
 * Every message passes through pl_log_redact before it goes anywhere:
 * bearer tokens, secret-looking query values and card numbers never reach
 * the log, whatever a caller formatted into it. */
#ifndef PL_LOG_H
#define PL_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PL_LOG_DEBUG, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR } pl_log_level;
typedef enum { PL_LOG_TEXT, PL_LOG_JSON } pl_log_format;

typedef void (*pl_log_sink)(pl_log_level level, const char *line, void *ud);

void pl_log_set_level(pl_log_level level);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int pl_log_parse_level(const char *name);
/* How lines are written to stderr (PL_LOG_TEXT by default). */
void pl_log_set_format(pl_log_format format);
pl_log_format pl_log_get_format(void);
/* Parses "text" or "json"; returns -1 for anything else. */
int pl_log_parse_format(const char *name);
/* Lines at or above `level` also go to sink; NULL removes it. When quiet is
 * set, stderr gets nothing (the sink alone sees the lines). */
void pl_log_set_sink(pl_log_sink sink, void *ud, int quiet);

/* What a line is about, beyond its message (each NULL when unknown). */
typedef struct {
    const char *bot, *channel;
    /* a script's error as scripts' errors read, "file:line: message": the
     * line's "file" and "line" are taken from it */
    const char *script_error;
} pl_log_fields;

/* The bot and channel the calling thread works for now (a turn's), which
 * its lines carry unless they say otherwise; the strings are borrowed until
 * the context is restored. Returns the one it replaces, for
 * pl_log_restore_context. */
pl_log_fields pl_log_set_context(const char *bot, const char *channel);
void pl_log_restore_context(pl_log_fields previous);

void pl_log(pl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As pl_log, with what the line is about (fields may be NULL). A line whose
 * fields and context name no bot, and whose message begins "[name] " (the
 * way every line about a bot begins), is about bot `name`. */
void pl_log_with(pl_log_level level, const pl_log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define pl_debug(...) pl_log(PL_LOG_DEBUG, __VA_ARGS__)
#define pl_info(...) pl_log(PL_LOG_INFO, __VA_ARGS__)
#define pl_warn(...) pl_log(PL_LOG_WARN, __VA_ARGS__)
#define pl_error(...) pl_log(PL_LOG_ERROR, __VA_ARGS__)

/* Copies text into out (at most size bytes, NUL included) with what must
 * never be logged masked: the credentials after "Bearer " or "Basic ", the
 * value of a query or form parameter named like a secret (token, key,
 * secret, password, signature, or ending in _token, _key, _secret, ...),
 * and a card number (13 to 19 digits, together or in groups split by
 * single spaces or dashes, that pass the Luhn check). Returns how many
 * things were masked. */
size_t pl_log_redact(const char *text, char *out, size_t size);

/* One line as the log writes it, without the newline (new string): the
 * message as given (redact it first), at ms, in format. */
char *pl_log_format_line(pl_log_format format, int64_t ms, pl_log_level level, const pl_log_fields *fields,
                         const char *message);

/* The file of a bot's script an error starts with ("flows/main.lua" of
 * "flows/main.lua:12: ..."; new) and its line, or NULL when the error does
 * not start with a path of a .lua file and a line. */
char *pl_log_script_position(const char *error, long *line);

#endif
