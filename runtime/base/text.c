/* text: folding, phrase matching and hashing of UTF-8 text; see text.h.
 * Normalisation itself is utf8proc's; this file only decides which marks to
 * drop and how words are separated. */
#include "text.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <utf8proc.h>

/* Scripts without spaces between words (and whose marks carry meaning):
 * CJK radicals onwards through Hangul, plus the CJK compatibility forms. */
static int is_cjk(utf8proc_int32_t cp) {
    return (cp >= 0x2E80 && cp <= 0xD7FF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFF66 && cp <= 0xFFDC) || (cp >= 0x20000 && cp <= 0x3FFFF);
}

int pl_text_is_cjk(int32_t cp) { return is_cjk(cp); }

static int is_separator(utf8proc_int32_t cp) {
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_CC:
        return 1;
    default:
        return cp == '\t' || cp == '\n' || cp == '\r';
    }
}

/* Drops accents (nonspacing marks on non-CJK letters), turns punctuation and
 * spacing into single spaces, trims. Works in place on UTF-32; returns the
 * new length. */
static size_t strip_and_space(utf8proc_int32_t *cps, size_t n) {
    size_t out = 0;
    utf8proc_int32_t base = 0;
    for (size_t i = 0; i < n; i++) {
        utf8proc_int32_t cp = cps[i];
        if (utf8proc_category(cp) == UTF8PROC_CATEGORY_MN) {
            if (!is_cjk(base)) continue;
            cps[out++] = cp;
            continue;
        }
        if (is_separator(cp)) {
            if (out > 0 && cps[out - 1] != ' ') cps[out++] = ' ';
            base = ' ';
            continue;
        }
        cps[out++] = cp;
        base = cp;
    }
    while (out > 0 && cps[out - 1] == ' ') out--;
    return out;
}

char *pl_text_fold(const char *s, size_t len) {
    utf8proc_uint8_t *decomposed = NULL;
    utf8proc_ssize_t dlen = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len,
                                         &decomposed,
                                         UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE |
                                             UTF8PROC_CASEFOLD | UTF8PROC_IGNORE |
                                             UTF8PROC_STRIPCC | UTF8PROC_LUMP);
    if (dlen < 0) return NULL;
    /* One slot per byte is always enough room for the code points, and
     * utf8proc_reencode writes UTF-8 back into the same buffer. */
    utf8proc_int32_t *cps = malloc(sizeof *cps * ((size_t)dlen + 1));
    if (!cps) abort();
    size_t n = 0;
    for (utf8proc_ssize_t pos = 0; pos < dlen;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(decomposed + pos, dlen - pos, &cp);
        if (step <= 0) break;
        cps[n++] = cp;
        pos += step;
    }
    free(decomposed);
    n = strip_and_space(cps, n);
    utf8proc_ssize_t outlen =
        utf8proc_reencode(cps, (utf8proc_ssize_t)n, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (outlen < 0) {
        free(cps);
        return NULL;
    }
    char *result = (char *)cps;
    result[outlen] = '\0';
    return result;
}

static utf8proc_int32_t first_cp(const char *s) {
    utf8proc_int32_t cp = 0;
    utf8proc_iterate((const utf8proc_uint8_t *)s, -1, &cp);
    return cp;
}

/* The last code point before `end` (s < end). */
static utf8proc_int32_t last_cp(const char *s, const char *end) {
    const char *p = end - 1;
    while (p > s && ((unsigned char)*p & 0xC0) == 0x80) p--;
    return first_cp(p);
}

/* A word ends where a space, the text's edge or a CJK character begins
 * ("lサイズ" holds the word "l"). */
int pl_text_has_phrase(const char *hay, const char *needle) {
    size_t nlen = strlen(needle);
    if (nlen == 0) return 0;
    int open_start = is_cjk(first_cp(needle));
    int open_end = is_cjk(last_cp(needle, needle + nlen));
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        const char *end = p + nlen;
        int start_ok = open_start || p == hay || p[-1] == ' ' || is_cjk(last_cp(hay, p));
        int end_ok = open_end || *end == '\0' || *end == ' ' || is_cjk(first_cp(end));
        if (start_ok && end_ok) return 1;
    }
    return 0;
}

/* Decodes s into code points (new array); *n gets the count. */
static utf8proc_int32_t *decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    utf8proc_int32_t *cps = malloc(sizeof *cps * (len + 1));
    if (!cps) abort();
    *n = 0;
    for (size_t pos = 0; pos < len;) {
        utf8proc_ssize_t step =
            utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), &cps[*n]);
        if (step <= 0) break;
        (*n)++;
        pos += (size_t)step;
    }
    return cps;
}

size_t pl_text_common_cjk_run(const char *a, const char *b) {
    size_t na, nb, best = 0;
    utf8proc_int32_t *x = decode(a, &na), *y = decode(b, &nb);
    for (size_t i = 0; i < na; i++) {
        for (size_t j = 0; j < nb; j++) {
            size_t k = 0;
            while (i + k < na && j + k < nb && x[i + k] == y[j + k] && is_cjk(x[i + k])) k++;
            if (k > best) best = k;
        }
    }
    free(x);
    free(y);
    return best;
}

int pl_text_is_utf8(const char *s, size_t len) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t pos = 0;
    while (pos < len) {
        uint64_t word; /* ASCII, most of what is checked: 8 bytes at a time, no decoding */
        while (len - pos >= 8 && (memcpy(&word, p + pos, 8), (word & 0x8080808080808080ULL) == 0)) pos += 8;
        if (pos == len) break;
        if (p[pos] < 0x80) {
            pos++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(p + pos, (utf8proc_ssize_t)(len - pos), &cp);
        if (step <= 0) return 0;
        pos += (size_t)step;
    }
    return 1;
}

char *pl_text_valid_utf8(const char *s) {
    size_t len = strlen(s), n = 0;
    /* at worst every byte becomes the 3 bytes of U+FFFD */
    char *out = malloc(3 * len + 1);
    if (!out) abort();
    for (size_t pos = 0; pos < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step =
            utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), &cp);
        if (step > 0) {
            memcpy(out + n, s + pos, (size_t)step);
            n += (size_t)step;
            pos += (size_t)step;
        } else {
            memcpy(out + n, "\xEF\xBF\xBD", 3);
            n += 3;
            pos++;
        }
    }
    out[n] = '\0';
    return out;
}

/* --- emoji ----------------------------------------------------------------------- */

/* What counts as an emoji is Unicode's (UTS #51), asked of ICU: a
 * character shown as an emoji by default (Emoji_Presentation: ☕ 😀, a
 * flag's regional indicators, a skin tone), or any emoji character that
 * the variation selector U+FE0F asks to show as one (❤️ ➡️ ©️ 1️⃣), or a
 * keycap (1⃣). With it goes what belongs to the sequence: selectors, skin
 * tones, the keycap mark, the tags of a subdivision flag, and characters
 * joined on with U+200D (👩‍💻, 🏳️‍🌈); a U+200D right after an emoji or right
 * before one goes with it even when it joins nothing (a cut-off 👩‍). A symbol in text presentation (− → ✓ ★ ♥
 * © ™ € ¥) is not an emoji, nor is any letter or ideograph. */
#define VS16 0xFE0F
#define ZWJ 0x200D
#define KEYCAP 0x20E3

/* The code point at s[pos..len) into *cp; returns its length (0 at the end
 * or on a byte that starts no character). */
static size_t code_at(const char *s, size_t pos, size_t len, int32_t *cp) {
    if (pos >= len) return 0;
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), &c);
    if (n <= 0) return 0;
    *cp = c;
    return (size_t)n;
}

static int is_regional_indicator(int32_t cp) { return cp >= 0x1F1E6 && cp <= 0x1F1FF; }

static int is_keycap_base(int32_t cp) { return (cp >= '0' && cp <= '9') || cp == '#' || cp == '*'; }

/* Which characters of the Basic Multilingual Plane have an emoji property
 * (Emoji or Emoji_Presentation, the two that starts_emoji asks first): one
 * bit each, asked of ICU a block of 256 at a time, the first time a
 * character of the block is met. Text is mostly letters and punctuation
 * without either (é · € ’ …), which then costs no ICU call. */
#define PROPERTY_BLOCKS 256
static uint8_t emoji_property_bits[PROPERTY_BLOCKS][256 / 8];
static atomic_uchar emoji_property_known[PROPERTY_BLOCKS];
static pthread_mutex_t emoji_property_lock = PTHREAD_MUTEX_INITIALIZER;

static void learn_emoji_properties(unsigned block) {
    pthread_mutex_lock(&emoji_property_lock);
    if (!atomic_load_explicit(&emoji_property_known[block], memory_order_relaxed)) {
        for (unsigned i = 0; i < 256; i++) {
            UChar32 cp = (UChar32)(block << 8 | i);
            if (u_hasBinaryProperty(cp, UCHAR_EMOJI) || u_hasBinaryProperty(cp, UCHAR_EMOJI_PRESENTATION))
                emoji_property_bits[block][i >> 3] |= (uint8_t)(1u << (i & 7));
        }
        atomic_store_explicit(&emoji_property_known[block], 1, memory_order_release);
    }
    pthread_mutex_unlock(&emoji_property_lock);
}

/* Whether cp may start an emoji: 0 only when it has neither property, and
 * then starts_emoji says 0 too. */
static int may_start_emoji(int32_t cp) {
    if (cp < 0 || cp >= PROPERTY_BLOCKS * 256) return 1;
    unsigned block = (unsigned)cp >> 8, i = (unsigned)cp & 255;
    if (!atomic_load_explicit(&emoji_property_known[block], memory_order_acquire)) learn_emoji_properties(block);
    return emoji_property_bits[block][i >> 3] >> (i & 7) & 1;
}

/* Whether the character at pos (cp, n bytes) starts an emoji. */
static int starts_emoji(const char *s, size_t pos, size_t len, int32_t cp, size_t n) {
    if (u_hasBinaryProperty(cp, UCHAR_EMOJI_PRESENTATION)) return 1;
    if (!u_hasBinaryProperty(cp, UCHAR_EMOJI)) return 0;
    int32_t next = 0, joined = 0;
    size_t m = code_at(s, pos + n, len, &next);
    if (m && next == VS16) return 1;
    if (m && next == KEYCAP) return is_keycap_base(cp);
    /* (the first of a joined sequence written without its selector: 👁‍🗨) */
    return m && next == ZWJ && code_at(s, pos + n + m, len, &joined) &&
           u_hasBinaryProperty(joined, UCHAR_EXTENDED_PICTOGRAPHIC) && !is_keycap_base(cp);
}

/* The part of an emoji sequence that may follow any of its characters. */
static int is_emoji_tail(int32_t cp) {
    return cp == VS16 || cp == KEYCAP || (cp >= 0xE0020 && cp <= 0xE007F) /* tags */ ||
           u_hasBinaryProperty(cp, UCHAR_EMOJI_MODIFIER);
}

/* The bytes of the emoji sequence at s[pos..len), or 0 when none starts there. */
static size_t emoji_at(const char *s, size_t pos, size_t len) {
    int32_t cp = 0;
    size_t n = code_at(s, pos, len, &cp);
    if (!n || !starts_emoji(s, pos, len, cp, n)) return 0;
    size_t end = pos + n;
    int32_t second = 0;
    size_t m2 = is_regional_indicator(cp) ? code_at(s, end, len, &second) : 0;
    if (m2 && is_regional_indicator(second)) end += m2; /* a flag is a pair of them */
    /* its tails, and joiners with what they join on; a joiner that joins
     * nothing on (a cut-off sequence: 👩‍) goes with the emoji too */
    int joining = 0;
    for (;;) {
        size_t m = code_at(s, end, len, &cp);
        if (!m) break;
        if (!is_emoji_tail(cp) && cp != ZWJ && !(joining && u_hasBinaryProperty(cp, UCHAR_EXTENDED_PICTOGRAPHIC)))
            break;
        joining = cp == ZWJ;
        end += m;
    }
    return end - pos;
}

/* The bytes of the run of joiners U+200D at s[pos..len), 0 when none. */
static size_t joiners_at(const char *s, size_t pos, size_t len) {
    int32_t cp = 0;
    size_t end = pos, m;
    while ((m = code_at(s, end, len, &cp)) && cp == ZWJ) end += m;
    return end - pos;
}

/* Whether c ends a sentence's part: a space before it went with the emoji. */
static int closes(char c) { return c == '\0' || c == '\n' || strchr("!?.,;:", c) != NULL; }

/* pl_text_strip_emoji; with valid not NULL, also whether s is UTF-8: every
 * character start is decoded (or is ASCII) on the way, and the first that
 * does not decode ends the walk with *valid 0. */
static size_t strip_emoji(const char *s, size_t len, char *out, size_t *removed, int *valid) {
    size_t n = 0, pos = 0;
    *removed = 0;
    while (pos < len) {
        unsigned char b = (unsigned char)s[pos];
        if (b < 0x80 && !(is_keycap_base(b) && pos + 1 < len && (unsigned char)s[pos + 1] >= 0x80)) {
            /* ASCII starts no emoji but for a keycap's digit, # or *, which
             * needs U+FE0F or U+20E3 after it: the run is kept as it is,
             * but for such a character right before the byte that ends it */
            size_t end = pos + 1;
            uint64_t word;
            while (len - end >= 8 && (memcpy(&word, s + end, 8), (word & 0x8080808080808080ULL) == 0)) end += 8;
            while (end < len && (unsigned char)s[end] < 0x80) end++;
            if (end < len && is_keycap_base((unsigned char)s[end - 1])) end--;
            if (out) memcpy(out + n, s + pos, end - pos);
            n += end - pos, pos = end;
            continue;
        }
        int32_t cp = 0;
        size_t keep = b >= 0x80 ? code_at(s, pos, len, &cp) : 1; /* the whole character */
        if (keep == 0 && valid) {
            *valid = 0;
            return n;
        }
        size_t skip = keep && (b < 0x80 || may_start_emoji(cp)) ? emoji_at(s, pos, len) : 0;
        if (!skip) {
            if (keep == 0) keep = 1;
            if (b == 0xE2 && cp == ZWJ) { /* joiners: dropped with the emoji after them, else kept */
                keep = joiners_at(s, pos, len);
                if (emoji_at(s, pos + keep, len)) {
                    pos += keep;
                    continue;
                }
            }
            if (out) memcpy(out + n, s + pos, keep);
            n += keep, pos += keep;
            continue;
        }
        (*removed)++;
        pos += skip;
        if (!out) continue;
        /* of the spaces either side of the emoji, the one it needed goes too */
        char next = pos < len ? s[pos] : '\0';
        if (next == ' ' && (n == 0 || out[n - 1] == ' ' || out[n - 1] == '\n')) {
            while (pos < len && s[pos] == ' ') pos++;
        } else if (closes(next)) {
            while (n > 0 && out[n - 1] == ' ') n--;
        }
    }
    return n;
}

size_t pl_text_strip_emoji(const char *s, size_t len, char *out, size_t *removed) {
    return strip_emoji(s, len, out, removed, NULL);
}

int pl_text_count_emoji(const char *s, size_t len, size_t *removed) {
    int valid = 1;
    strip_emoji(s, len, NULL, removed, &valid);
    return valid;
}

uint64_t pl_text_hash(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

char *pl_text_html_escape(const char *s) {
    size_t n = 0;
    for (const char *p = s ? s : ""; *p; p++) n += strchr("&<>\"'", *p) ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out) abort();
    for (const char *p = s ? s : ""; *p; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;"
                        : *p == '"' ? "&quot;" : *p == '\'' ? "&#39;" : NULL;
        if (!rep) {
            *o++ = *p;
            continue;
        }
        size_t len = strlen(rep);
        memcpy(o, rep, len);
        o += len;
    }
    *o = '\0';
    return out;
}

int pl_text_locale_valid(const char *s) {
    size_t n = 0;
    while (s[n] >= 'a' && s[n] <= 'z') n++;
    if (n < 2 || n > 3) return 0;
    if (!s[n]) return 1;
    if (s[n] != '-') return 0;
    const char *r = s + n + 1;
    size_t rn = strlen(r);
    if (rn == 2) return r[0] >= 'A' && r[0] <= 'Z' && r[1] >= 'A' && r[1] <= 'Z';
    return rn == 3 && r[0] >= '0' && r[0] <= '9' && r[1] >= '0' && r[1] <= '9' && r[2] >= '0' && r[2] <= '9';
}
