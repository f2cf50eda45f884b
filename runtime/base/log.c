/* log: formats, redacts and writes log lines; see log.h. JSON lines are
 * written by jansson; text that is not UTF-8 goes in with U+FFFD (text.h). */
#define _GNU_SOURCE
#include "log.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "text.h"

static pl_log_level min_level = PL_LOG_INFO;
static pl_log_format format = PL_LOG_TEXT;
static pl_log_sink sink_fn;
static void *sink_ud;
static int stderr_quiet;
/* turn threads log too: one sink call at a time */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local pl_log_fields context;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_words[] = {"debug", "info", "warn", "error"};

void pl_log_set_level(pl_log_level level) { min_level = level; }

int pl_log_parse_level(const char *name) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_words[i]) == 0) return i;
    return -1;
}

void pl_log_set_format(pl_log_format f) { format = f; }
pl_log_format pl_log_get_format(void) { return format; }

int pl_log_parse_format(const char *name) {
    if (strcmp(name, "text") == 0) return PL_LOG_TEXT;
    if (strcmp(name, "json") == 0) return PL_LOG_JSON;
    return -1;
}

void pl_log_set_sink(pl_log_sink sink, void *ud, int quiet) {
    sink_fn = sink;
    sink_ud = ud;
    stderr_quiet = sink ? quiet : 0;
}

pl_log_fields pl_log_set_context(const char *bot, const char *channel) {
    pl_log_fields previous = context;
    context = (pl_log_fields){.bot = bot, .channel = channel};
    return previous;
}

void pl_log_restore_context(pl_log_fields previous) { context = previous; }

/* --- redaction ------------------------------------------------------------------ */

#define MASK "[redacted]"

typedef struct {
    char *s;
    size_t len, size; /* size: of s, NUL included */
} out_buf;

static void emit(out_buf *o, const char *s, size_t n) {
    if (o->size == 0) return;
    size_t room = o->size - 1 - o->len;
    if (n > room) n = room;
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static int is_word(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* The characters of a bearer token or of Basic's base64. */
static int is_credential(char c) { return isalnum((unsigned char)c) || (c && strchr("-._~+/=", c) != NULL); }

/* Whether a parameter's name says its value is a secret: its last part
 * (after _, - or .) is one of the words below. */
static int secret_name(const char *name, size_t len) {
    static const char *const words[] = {"token", "key", "secret", "password", "passwd", "signature", "apikey"};
    size_t start = len;
    while (start > 0 && name[start - 1] != '_' && name[start - 1] != '-' && name[start - 1] != '.') start--;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i]) == len - start && strncasecmp(name + start, words[i], len - start) == 0) return 1;
    return 0;
}

static int luhn(const char *digits, size_t n) {
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return sum % 10 == 0;
}

/* The length of the card number that starts at text[i] (a digit after no
 * letter or digit), or 0: 13 to 19 digits that pass the Luhn check, either
 * together, or in groups of 4 to 6 (the last of 3 to 6) split by the same
 * single space or dash (4242 4242 4242 4242, 3782-822463-10005), and no
 * letter or digit after. */
static size_t card_at(const char *text, size_t i) {
    char digits[20];
    size_t n = 0, j = i, group = 0;
    char split = 0;
    for (;;) {
        if (isdigit((unsigned char)text[j])) {
            if (n == 19) return 0;
            digits[n++] = text[j++];
            group++;
            continue;
        }
        int between = (text[j] == ' ' || text[j] == '-') && isdigit((unsigned char)text[j + 1]);
        if (between && (split == 0 || text[j] == split) && group >= 4 && group <= 6 && (split || n < 13)) {
            /* a split is taken only between groups of a grouped number */
            split = text[j++];
            group = 0;
            continue;
        }
        break;
    }
    if (split && (group < 3 || group > 6)) return 0;
    if (is_word(text[j]) || n < 13 || !luhn(digits, n)) return 0;
    return j - i;
}

size_t pl_log_redact(const char *text, char *out, size_t size) {
    out_buf o = {out, 0, size};
    if (size) out[0] = '\0';
    size_t masked = 0;
    for (size_t i = 0; text[i];) {
        int boundary = i == 0 || !is_word(text[i - 1]);
        /* Authorization credentials */
        size_t scheme = 0;
        if (boundary && strncasecmp(text + i, "bearer ", 7) == 0) scheme = 7;
        else if (boundary && strncasecmp(text + i, "basic ", 6) == 0) scheme = 6;
        if (scheme) {
            size_t j = i + scheme;
            while (is_credential(text[j])) j++;
            emit(&o, text + i, scheme);
            if (j > i + scheme) {
                emit(&o, MASK, strlen(MASK));
                masked++;
            }
            i = j;
            continue;
        }
        /* name=value, where the name says the value is a secret */
        if (text[i] == '=') {
            size_t start = i;
            while (start > 0 && (is_word(text[start - 1]) || text[start - 1] == '-' || text[start - 1] == '.')) start--;
            size_t j = i + 1;
            while (text[j] && !isspace((unsigned char)text[j]) && !strchr("&\"',;<>)]}", text[j])) j++;
            if (start < i && j > i + 1 && secret_name(text + start, i - start)) {
                emit(&o, "=", 1);
                emit(&o, MASK, strlen(MASK));
                masked++;
                i = j;
                continue;
            }
        }
        /* a card number */
        if (isdigit((unsigned char)text[i]) && boundary) {
            size_t len = card_at(text, i);
            if (len) {
                emit(&o, MASK, strlen(MASK));
                masked++;
                i += len;
                continue;
            }
            /* the rest of this run of digits is no card's start either */
            size_t j = i;
            while (isdigit((unsigned char)text[j])) j++;
            emit(&o, text + i, j - i);
            i = j;
            continue;
        }
        emit(&o, text + i, 1);
        i++;
    }
    return masked;
}

/* --- lines ------------------------------------------------------------------------- */

/* From "file:line: message": the file (new) and the line, or NULL. */
char *pl_log_script_position(const char *error, long *line) {
    if (!error) return NULL;
    /* a path of a bot's files: letters, digits and _ . / - only, ending
     * in .lua (what a shopper wrote never passes for one) */
    size_t n = strspn(error, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-");
    if (n < 5 || n > 256 || strncmp(error + n - 4, ".lua", 4) != 0 || error[n] != ':' ||
        !isdigit((unsigned char)error[n + 1]))
        return NULL;
    char *end = NULL;
    long at = strtol(error + n + 1, &end, 10);
    if ((*end != ':' && *end != '\0') || at <= 0) return NULL;
    *line = at;
    return pl_strndup(error, n);
}

char *pl_log_format_line(pl_log_format fmt, int64_t ms, pl_log_level level, const pl_log_fields *fields,
                         const char *message) {
    char stamp[40];
    pl_format_time(ms, stamp, sizeof stamp);
    if (fmt == PL_LOG_TEXT) return pl_strdupf("%s %-5s %s", stamp, level_names[level], message);
    char *text = pl_text_valid_utf8(message);
    json_t *line = json_pack("{s:s, s:s, s:s}", "time", stamp, "level", level_words[level], "message",
                             text ? text : "");
    free(text);
    if (fields && fields->bot) json_object_set_new(line, "bot", json_string(fields->bot));
    if (fields && fields->channel) json_object_set_new(line, "channel", json_string(fields->channel));
    long at = 0;
    char *file = pl_log_script_position(fields ? fields->script_error : NULL, &at);
    if (file) {
        char *valid = pl_text_valid_utf8(file);
        json_object_set_new(line, "file", json_string(valid ? valid : ""));
        json_object_set_new(line, "line", json_integer(at));
        free(valid);
        free(file);
    }
    char *dumped = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    /* a name that is not UTF-8 is left out by json_string: the line is
     * still a line */
    return dumped ? dumped : pl_strdupf("{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"\"}", stamp, level_words[level]);
}

/* The bot of a message that begins "[name] ", copied into buf; NULL when it
 * does not. */
static const char *bot_prefix(const char *message, char *buf, size_t size) {
    if (message[0] != '[') return NULL;
    size_t n = 0;
    while (n + 1 < size && (isalnum((unsigned char)message[1 + n]) || message[1 + n] == '-' || message[1 + n] == '_'))
        n++;
    if (n == 0 || n > 64 || message[1 + n] != ']' || message[2 + n] != ' ') return NULL;
    memcpy(buf, message + 1, n);
    buf[n] = '\0';
    return buf;
}

static void write_line(pl_log_level level, const pl_log_fields *given, const char *fmt, va_list ap) {
    char raw[2048], message[2048 + 256];
    int full = vsnprintf(raw, sizeof raw, fmt, ap);
    if (full >= (int)sizeof raw) {
        /* cut: the digits at the cut may be the start of a card number,
         * which the redaction would no longer recognise: they go too */
        size_t n = strlen(raw);
        while (n > 0 && (isdigit((unsigned char)raw[n - 1]) || raw[n - 1] == ' ' || raw[n - 1] == '-')) n--;
        raw[n] = '\0';
    }
    pl_log_redact(raw, message, sizeof message);
    if (!stderr_quiet) {
        pl_log_fields f = {0};
        char prefixed[80];
        if (format == PL_LOG_JSON) {
            f.script_error = given ? given->script_error : NULL;
            f.bot = given && given->bot ? given->bot : context.bot;
            f.channel = given && given->channel ? given->channel : given && given->bot ? NULL : context.channel;
            if (!f.bot) f.bot = bot_prefix(message, prefixed, sizeof prefixed);
        }
        char *line = pl_log_format_line(format, pl_now_ms(), level, &f, message);
        fprintf(stderr, "%s\n", line);
        fflush(stderr);
        free(line);
    }
    if (sink_fn) {
        pthread_mutex_lock(&sink_lock);
        sink_fn(level, message, sink_ud);
        pthread_mutex_unlock(&sink_lock);
    }
}

void pl_log(pl_log_level level, const char *fmt, ...) {
    if (level < min_level) return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, NULL, fmt, ap);
    va_end(ap);
}

void pl_log_with(pl_log_level level, const pl_log_fields *fields, const char *fmt, ...) {
    if (level < min_level) return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, fields, fmt, ap);
    va_end(ap);
}
