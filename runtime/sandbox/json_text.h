/* json_text: JSON text written straight into a growing buffer, for the
 * hot paths that would otherwise build a jansson tree only to dump it
 * (json_lua.c's writer of Lua values, the pipeline's transcript lines).
 * What it writes is byte for byte what json_dumps(..., JSON_COMPACT) writes
 * for the same values: jansson's escapes (\" \\ \b \f \n \r \t, other
 * control characters as \u00XX in capitals, nothing else escaped), strings
 * checked as UTF-8 by jansson's rules (which are utf8proc's), reals in
 * jansson's own digits; tests/c/test_json_text.c compares the two.
 *
 * The buffer is allocated as jansson allocates (json_alloc.h): inside an
 * open scope it counts in that scope's budget and a refused reservation
 * fails the write as it fails jansson. Every function returns 1, or 0 when
 * the buffer could not grow (the text so far stays; discard it). */
#ifndef PL_JSON_TEXT_H
#define PL_JSON_TEXT_H

#include <stddef.h>

typedef struct {
    char *text; /* NULL until the first byte */
    size_t len, cap;
    size_t nuls; /* NUL bytes written in strings (as \u0000) so far */
} pl_json_text;

/* Makes room for n more bytes and a final NUL. */
int pl_json_text_reserve(pl_json_text *t, size_t n);
/* Appends n bytes as they are (JSON punctuation, text already JSON). */
int pl_json_text_put(pl_json_text *t, const char *s, size_t n);

static inline int pl_json_text_char(pl_json_text *t, char c) {
    if (t->cap - t->len <= 1 && !pl_json_text_reserve(t, 1)) return 0;
    t->text[t->len++] = c;
    return 1;
}

/* Appends s (len bytes, NULs included) as a JSON string. 0 also when s is
 * not valid UTF-8: *bad is then 1 (and 0 when the buffer could not grow). */
int pl_json_text_string(pl_json_text *t, const char *s, size_t len, int *bad);
int pl_json_text_integer(pl_json_text *t, long long i);
/* A finite real (NaN and infinity have no JSON text). */
int pl_json_text_real(pl_json_text *t, double v);

/* Ends the text with a NUL and hands it over (new; *len, when len is not
 * NULL, its length), or NULL when that byte did not fit (the buffer is
 * freed). t is empty again after either. The text is freed as jansson's
 * text: pl_json_scope_free inside a scope, free() outside. */
char *pl_json_text_finish(pl_json_text *t, size_t *len);
/* Frees what was written. */
void pl_json_text_discard(pl_json_text *t);

#endif
