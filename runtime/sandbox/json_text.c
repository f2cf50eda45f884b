/* json_text: JSON text written straight into a growing buffer, byte for
 * byte as jansson's json_dumps(..., JSON_COMPACT) writes the same values;
 * see json_text.h. Uses json_alloc.h's allocator, jansson for reals. */
#include "json_text.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_alloc.h"

int pl_json_text_reserve(pl_json_text *t, size_t n) {
    if (t->cap - t->len > n) return 1;
    size_t cap = t->cap ? t->cap : 256;
    while (cap - t->len <= n) {
        if (cap > ((size_t)-1) / 2) return 0;
        cap *= 2;
    }
    char *bigger = pl_json_scope_malloc(cap);
    if (!bigger) return 0;
    if (t->len) memcpy(bigger, t->text, t->len);
    pl_json_scope_free(t->text);
    t->text = bigger;
    t->cap = cap;
    return 1;
}

int pl_json_text_put(pl_json_text *t, const char *s, size_t n) {
    if (t->cap - t->len <= n && !pl_json_text_reserve(t, n)) return 0;
    memcpy(t->text + t->len, s, n);
    t->len += n;
    return 1;
}

/* The length of the UTF-8 sequence at s (at most n bytes), 0 when it is
 * not a valid one: utf8proc's rules (text.c's pl_text_is_utf8), which are
 * also jansson's (no overlong forms, no surrogates, nothing past
 * U+10FFFF). Only called for a byte >= 0x80. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0xC2 || c > 0xF4) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] > 0x9F) return 0; /* a surrogate */
        return 3;
    }
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[1] > 0x8F) return 0; /* past U+10FFFF */
    return 4;
}

/* What each byte of a string needs: 0 nothing (ASCII written as it is),
 * 1 an escape (a control character, '"', '\\'), 2 a check (the first
 * byte of a UTF-8 sequence, or a byte that cannot be one). */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
    [0x80] = 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* Whether any of the 8 bytes of w is not written as it is (byte_class is
 * not 0: a control character, '"', '\\', a byte >= 0x80), with the
 * classic tests for a zero byte and a byte below n in a word, which are
 * exact about whether there is any. */
static inline int word_needs_look(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t below_space = (w - ones * 0x20) & ~w;
    uint64_t is_quote = (quote - ones) & ~quote, is_backslash = (backslash - ones) & ~backslash;
    return ((below_space | is_quote | is_backslash | w) & highs) != 0;
}

/* Room for the bytes as they are and the quotes is made once; an escape
 * makes room for what it adds. Plain text is skipped 8 bytes at a time. */
int pl_json_text_string(pl_json_text *t, const char *s, size_t len, int *bad) {
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    *bad = 0;
    if (t->cap - t->len <= len + 2 && !pl_json_text_reserve(t, len + 2)) return 0;
    t->text[t->len++] = '"';
    for (;;) {
        const unsigned char *run = p;
        for (;;) { /* the bytes written as they are, UTF-8 sequences checked */
            for (uint64_t w; end - p >= 8 && (memcpy(&w, p, 8), !word_needs_look(w));) p += 8;
            while (p < end && byte_class[*p] == 0) p++;
            if (p == end || byte_class[*p] == 1) break;
            size_t n = utf8_sequence(p, (size_t)(end - p));
            if (!n) {
                *bad = 1;
                return 0;
            }
            p += n;
        }
        memcpy(t->text + t->len, run, (size_t)(p - run));
        t->len += (size_t)(p - run);
        if (p == end) break;
        /* an escape: up to 5 bytes more than the byte it stands for */
        if (!pl_json_text_reserve(t, (size_t)(end - p) + 6)) return 0;
        char *out = t->text + t->len;
        out[0] = '\\';
        switch (*p) {
        case '"': out[1] = '"'; break;
        case '\\': out[1] = '\\'; break;
        case '\b': out[1] = 'b'; break;
        case '\f': out[1] = 'f'; break;
        case '\n': out[1] = 'n'; break;
        case '\r': out[1] = 'r'; break;
        case '\t': out[1] = 't'; break;
        default: /* another control character */
            t->nuls += *p == 0;
            memcpy(out + 1, "u00", 3);
            out[4] = hex[*p >> 4];
            out[5] = hex[*p & 15];
            t->len += 4;
        }
        t->len += 2;
        p++;
    }
    t->text[t->len++] = '"';
    return 1;
}

int pl_json_text_integer(pl_json_text *t, long long i) {
    char digits[24], *d = digits + sizeof digits;
    /* the magnitude as unsigned, so that the smallest integer has one */
    unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
    do {
        *--d = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (i < 0) *--d = '-';
    return pl_json_text_put(t, d, (size_t)(digits + sizeof digits - d));
}

/* jansson's own formatting, asked for each real: parley's data has few,
 * and a jansson built with another formatter would write other digits. */
int pl_json_text_real(pl_json_text *t, double v) {
    char digits[128];
    json_t *real = json_real(v);
    size_t n = real ? json_dumpb(real, digits, sizeof digits, JSON_ENCODE_ANY) : 0;
    json_decref(real);
    return n > 0 && n <= sizeof digits && pl_json_text_put(t, digits, n);
}

char *pl_json_text_finish(pl_json_text *t, size_t *len) {
    if (!pl_json_text_char(t, '\0')) {
        pl_json_text_discard(t);
        return NULL;
    }
    char *text = t->text;
    if (len) *len = t->len - 1;
    *t = (pl_json_text){0};
    return text;
}

void pl_json_text_discard(pl_json_text *t) {
    pl_json_scope_free(t->text);
    *t = (pl_json_text){0};
}
