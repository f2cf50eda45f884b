/* text: UTF-8 folding and matching for what shoppers type.
 *
 * Folding makes matching case- and accent-insensitive in every script:
 * Unicode compatibility decomposition and case folding (utf8proc), accents
 * dropped from letters outside the CJK blocks (so "Café" == "cafe" while
 * Japanese dakuten are kept: ガ stays ガ), punctuation turned into single
 * spaces. Matching then compares folded strings word by word. */
#ifndef PL_TEXT_H
#define PL_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Returns a new folded copy of s[0..len), or NULL when s is not valid UTF-8. */
char *pl_text_fold(const char *s, size_t len);

/* True when folded `needle` occurs in folded `hay` as whole words. Where the
 * needle starts or ends in a script written without spaces (CJK), that side
 * needs no word boundary. */
int pl_text_has_phrase(const char *hay, const char *needle);

/* The length, in code points, of the longest run of CJK characters that
 * both folded strings contain. */
size_t pl_text_common_cjk_run(const char *a, const char *b);

/* True for a code point of a script written without spaces between words
 * (CJK radicals through Hangul, and the CJK compatibility forms). */
int pl_text_is_cjk(int32_t cp);

/* True when s[0..len) is valid UTF-8. */
int pl_text_is_utf8(const char *s, size_t len);

/* A new copy of s (NUL-terminated) in which every byte that starts no
 * valid UTF-8 character is replaced by U+FFFD: for text that quotes what a
 * client sent and must go into JSON. */
char *pl_text_valid_utf8(const char *s);

/* Copies s[0..len) to out (room for len bytes) without its emoji, as
 * Unicode defines them (UTS #51, through ICU): characters shown as emoji by
 * default, any emoji character followed by the selector U+FE0F, keycaps,
 * and whatever belongs to such a sequence (selectors, skin tones, tags,
 * characters joined on with U+200D). Symbols in text presentation (− → ✓ ★
 * © € ¥), letters and ideographs stay. A space the emoji needed goes with
 * it ("Hi ☕ there 🎉!" -> "Hi there!"). For valid UTF-8 only. Returns the
 * length written; *removed gets how many emoji were left out. With out
 * NULL it only counts them (and the length returned means nothing). */
size_t pl_text_strip_emoji(const char *s, size_t len, char *out, size_t *removed);
/* pl_text_is_utf8 and pl_text_strip_emoji's count in one pass: whether s
 * is valid UTF-8, and then in *removed how many emoji it holds. */
int pl_text_count_emoji(const char *s, size_t len, size_t *removed);

/* A new copy of s with &, <, >, " and ' as HTML entities (&amp; &lt; &gt;
 * &quot; &#39;), safe inside element text and quoted attribute values. A
 * NULL s is the empty string. */
char *pl_text_html_escape(const char *s);

/* True for a locale code as bots write them: a language of 2 or 3
 * lowercase letters, optionally "-" and a region of 2 capitals or 3 digits
 * (en, fil, pt-BR, es-419). */
int pl_text_locale_valid(const char *s);

/* 64-bit FNV-1a: stable across runs and machines, for deterministic choices. */
uint64_t pl_text_hash(const char *s, size_t len);

#endif
