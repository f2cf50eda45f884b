/* test_text: folding, phrase matching, UTF-8 validation and hashing (text.h). */
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "check.h"

/* Folds a NUL-terminated string and compares it with want (NULL: expect failure). */
static int fold_is(const char *s, const char *want) {
    char *got = pl_text_fold(s, strlen(s));
    int ok = want ? (got && strcmp(got, want) == 0) : got == NULL;
    if (!ok)
        printf("#   fold(\"%s\") = \"%s\", want \"%s\"\n", s, got ? got : "(null)",
               want ? want : "(null)");
    free(got);
    return ok;
}

TEST(fold_case_and_accents) {
    CHECK(fold_is("Café", "cafe"));
    CHECK(fold_is("ÉCLAIR", "eclair"));
    CHECK(fold_is("Crème Brûlée", "creme brulee"));
    CHECK(fold_is("Straße", "strasse"));
    CHECK(fold_is("latte", "latte"));
    /* precomposed and decomposed input fold alike */
    CHECK(fold_is("Cafe\xcc\x81", "cafe"));
}

TEST(fold_fullwidth) {
    CHECK(fold_is("ＬＡＴＴＥ", "latte"));
    CHECK(fold_is("ｌａｔｔｅ　２", "latte 2"));
}

TEST(fold_punctuation_and_spaces) {
    CHECK(fold_is("Hello, world!", "hello world"));
    CHECK(fold_is("  a -- b  ", "a b"));
    CHECK(fold_is("one...two", "one two"));
    CHECK(fold_is("tab\there\nnewline", "tab here newline"));
    CHECK(fold_is("(latte)", "latte"));
    CHECK(fold_is("  ", ""));
    CHECK(fold_is("", ""));
    /* CJK punctuation separates too */
    CHECK(fold_is("ラテ、ください。", "ラテ ください"));
}

TEST(fold_keeps_dakuten) {
    CHECK(fold_is("ガ", "ガ"));
    CHECK(fold_is("ぱん", "ぱん"));
    CHECK(fold_is("カフェラテをください", "カフェラテをください"));
    /* the accent is dropped on the Latin letter but not the kana mark next to it */
    CHECK(fold_is("éガ", "eガ"));
    /* half-width kana with their separate voiced marks fold to the full-width letter */
    CHECK(fold_is("ｶﾞ", "ガ"));
    CHECK(fold_is("ﾊﾟﾝ", "パン"));
    CHECK(fold_is("Ｌサイズ", "lサイズ"));
}

TEST(fold_invalid_utf8) {
    CHECK(fold_is("caf\xc3", NULL));
    CHECK(fold_is("\xff\xfe", NULL));
    CHECK(fold_is("ok\xc0\xafok", NULL)); /* overlong '/' */
    CHECK(fold_is("\xed\xa0\x80", NULL)); /* a UTF-16 surrogate */
}

TEST(fold_respects_length) {
    const char *s = "Latte, please";
    char *got = pl_text_fold(s, 5);
    CHECK_STR(got, "latte");
    free(got);
}

TEST(phrase_whole_words) {
    CHECK(pl_text_has_phrase("a large latte please", "latte"));
    CHECK(pl_text_has_phrase("a large latte please", "large latte"));
    CHECK(pl_text_has_phrase("latte", "latte"));
    CHECK(pl_text_has_phrase("latte please", "latte"));
    CHECK(pl_text_has_phrase("a latte", "latte"));
    CHECK(!pl_text_has_phrase("a large latte please", "late"));
    CHECK(!pl_text_has_phrase("a large latte please", "att"));
    CHECK(!pl_text_has_phrase("lattes", "latte"));
    CHECK(!pl_text_has_phrase("matchalatte", "latte"));
    /* a later occurrence counts when the first one is inside a word */
    CHECK(pl_text_has_phrase("lattes or a latte", "latte"));
    CHECK(!pl_text_has_phrase("latte", ""));
    CHECK(!pl_text_has_phrase("", "latte"));
}

TEST(phrase_cjk) {
    CHECK(pl_text_has_phrase("カフェラテをください", "ラテ"));
    CHECK(pl_text_has_phrase("カフェラテをください", "カフェラテ"));
    CHECK(!pl_text_has_phrase("カフェラテをください", "抹茶"));
    /* a Latin word is bounded by CJK on either side */
    CHECK(pl_text_has_phrase("lサイズ", "l"));
    CHECK(pl_text_has_phrase("サイズl", "l"));
    CHECK(pl_text_has_phrase("ラテのlサイズ", "l"));
    CHECK(!pl_text_has_phrase("latteサイズ", "l"));
    CHECK(pl_text_has_phrase("large ラテ", "ラテ"));
}

TEST(phrase_with_folded_input) {
    /* the usual path: both sides folded first */
    char *hay = pl_text_fold("A LARGE Café au Lait, please!", strlen("A LARGE Café au Lait, please!"));
    char *needle = pl_text_fold("café AU lait", strlen("café AU lait"));
    CHECK(hay && needle);
    if (hay && needle) CHECK(pl_text_has_phrase(hay, needle));
    free(hay);
    free(needle);
}

TEST(is_utf8) {
    CHECK(pl_text_is_utf8("", 0));
    CHECK(pl_text_is_utf8("plain", 5));
    CHECK(pl_text_is_utf8("Café", strlen("Café")));
    CHECK(pl_text_is_utf8("カフェ", strlen("カフェ")));
    CHECK(pl_text_is_utf8("\xf0\x9f\x8d\xb5", 4)); /* U+1F375 */
    CHECK(!pl_text_is_utf8("caf\xc3", 4));
    CHECK(!pl_text_is_utf8("\x80", 1));
    CHECK(!pl_text_is_utf8("\xc0\xaf", 2));
    CHECK(!pl_text_is_utf8("\xed\xa0\x80", 3));
    CHECK(!pl_text_is_utf8("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    /* only len bytes are looked at: a truncated sequence at the cut is invalid */
    CHECK(!pl_text_is_utf8("カフェ", 2));
    CHECK(pl_text_is_utf8("ab\xff", 2));
}

TEST(hash_fnv1a_vectors) {
    CHECK(pl_text_hash("", 0) == 0xcbf29ce484222325ULL);
    CHECK(pl_text_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
    CHECK(pl_text_hash("foobar", 6) == 0x85944171f73967e8ULL);
    CHECK(pl_text_hash("カフェ", strlen("カフェ")) == 0xeee1b79c33b37128ULL);
    /* length-bounded and stable */
    CHECK(pl_text_hash("foobarbaz", 6) == pl_text_hash("foobar", 6));
    CHECK(pl_text_hash("foobar", 6) != pl_text_hash("foobaz", 6));
}

TEST(html_escape) {
    char *e = pl_text_html_escape("<a href=\"x\">Tom & Jerry's</a>");
    CHECK_STR(e, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    free(e);
    e = pl_text_html_escape(NULL);
    CHECK_STR(e, "");
    free(e);
    e = pl_text_html_escape("café ☕");
    CHECK_STR(e, "café ☕");
    free(e);
}

/* Strips a NUL-terminated string and compares it with want. */
static int stripped_is(const char *s, const char *want, size_t want_removed) {
    size_t len = strlen(s), counted = 0, removed = 0;
    char *out = malloc(len + 1);
    pl_text_strip_emoji(s, len, NULL, &counted);
    out[pl_text_strip_emoji(s, len, out, &removed)] = '\0';
    int ok = strcmp(out, want) == 0 && removed == want_removed && counted == removed;
    if (!ok) printf("#   strip(\"%s\") = \"%s\" (%zu removed), want \"%s\" (%zu)\n", s, out, removed, want, want_removed);
    free(out);
    return ok;
}

TEST(strip_emoji_removes_emoji) {
    CHECK(stripped_is("Hi \u2615 there \U0001F389!", "Hi there!", 2));            /* ☕ 🎉 */
    CHECK(stripped_is("\u2728 Great choice", "Great choice", 1));                  /* ✨ at the start */
    CHECK(stripped_is("Thanks! \U0001F49B", "Thanks!", 1));                        /* 💛 at the end */
    CHECK(stripped_is("Ready \u2615\nNext", "Ready\nNext", 1));
    CHECK(stripped_is("a \U0001F355\U0001F525 b", "a b", 2));                     /* 🍕🔥 */
    CHECK(stripped_is("Love \u2764\uFE0F it", "Love it", 1));                      /* ❤️ */
    CHECK(stripped_is("Go \u27A1\uFE0F now", "Go now", 1));                        /* ➡️ */
    CHECK(stripped_is("Press 1\uFE0F\u20E3 or #\u20E3", "Press or", 2));        /* keycaps */
    CHECK(stripped_is("Wave \U0001F44B\U0001F3FD!", "Wave!", 1));                  /* skin tone */
    /* joined sequences: 👩‍💻, 👨‍👩‍👧‍👦, 🏳️‍🌈, 👁‍🗨 (no selector) */
    CHECK(stripped_is("Dev \U0001F469\u200D\U0001F4BB here", "Dev here", 1));
    CHECK(stripped_is("\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 family", "family", 1));
    CHECK(stripped_is("Pride \U0001F3F3\uFE0F\u200D\U0001F308.", "Pride.", 1));
    CHECK(stripped_is("See \U0001F441\u200D\U0001F5E8 this", "See this", 1));
    /* flags: a pair of regional indicators, and a subdivision's tags (England) */
    CHECK(stripped_is("Hecho en \U0001F1EA\U0001F1F8", "Hecho en", 1));
    CHECK(stripped_is("\U0001F1EF\U0001F1F5\U0001F1EB\U0001F1F7 two flags", "two flags", 2));
    CHECK(stripped_is("From \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F with love",
                      "From with love", 1));
}

TEST(strip_emoji_keeps_symbols) {
    const char *kept[] = {
        "Code WELCOME: \u2212\u20AC1.00",                 /* − € */
        "-5 \u2212 3 = \u22128",                            /* minus signs */
        "Next \u2192 pay \u2190 back \u2194 \u21D2",      /* → ← ↔ ⇒ */
        "\u00A5500 \u00A3 $ \u20B9 \u20A9 \u20BF",        /* currency */
        "\u3044\u3089\u3063\u3057\u3083\u3044\u307E\u305B \u5496\u5561 \uD55C\uAD6D\uC5B4", /* kana, CJK, Hangul */
        "\u2713 done \u2605 \u2665 \u00A9 2026 \u2122 \u00B0C \u2014 \u2026", /* ✓ ★ ♥ © ™ ° — … */
        "\u2764 in text presentation, \u2600 too",          /* ❤ ☀ without a selector */
        "Order #12: 2 \u00D7 latte, 10 * 2",                  /* digits, # and * alone */
        "\u0645\u0631\u062D\u0628\u0627 \u05E9\u05DC\u05D5\u05DD", /* Arabic, Hebrew */
    };
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) CHECK(stripped_is(kept[i], kept[i], 0));
    /* beside an emoji they stay too */
    CHECK(stripped_is("\u2212\u20AC2 \u2192 \u2615 \u2192 \u5496\u5561", "\u2212\u20AC2 \u2192 \u2192 \u5496\u5561", 1));
}

/* A joiner U+200D goes with the emoji it follows or comes before: a cut-off
 * sequence leaves no invisible character behind. */
TEST(strip_emoji_leaves_no_joiner) {
    CHECK(stripped_is("\U0001F469\u200D", "", 1));                              /* 👩‍ cut off */
    CHECK(stripped_is("Hi \U0001F469\u200D there", "Hi there", 1));
    CHECK(stripped_is("\U0001F600\u200D\u200Dx", "x", 1));
    CHECK(stripped_is("#\u200D\U0001F600", "#", 1));                             /* # is kept, not its joiner */
    CHECK(stripped_is("x\u200D\u200D\U0001F600 y", "x y", 1));
    /* a long run is one sequence, stripped in one pass */
    const char *unit = "\U0001F600\u200D";
    size_t unit_len = strlen(unit), count = 200000;
    char *many = malloc(unit_len * count + 2);
    for (size_t i = 0; i < count; i++) memcpy(many + i * unit_len, unit, unit_len);
    strcpy(many + unit_len * count, "x");
    char *out = malloc(unit_len * count + 2);
    size_t removed = 0, n = pl_text_strip_emoji(many, strlen(many), out, &removed);
    CHECK(n == 1 && out[0] == 'x' && removed == 1);
    /* and a long run of joiners that joins nothing stays, in one pass too */
    for (size_t i = 0; i < count; i++) memcpy(many + i * 3, "\u200D", 3);
    strcpy(many + 3 * count, "x");
    n = pl_text_strip_emoji(many, strlen(many), out, &removed);
    CHECK(n == 3 * count + 1 && removed == 0);
    free(out);
    free(many);
    /* a joiner between letters is the script's (Devanagari, Persian): it stays */
    CHECK(stripped_is("\u0915\u094D\u200D\u0937", "\u0915\u094D\u200D\u0937", 0));
    CHECK(stripped_is("\u0646\u200D\u0645 \u2615", "\u0646\u200D\u0645", 1));
}

int main(void) {
    RUN(fold_case_and_accents);
    RUN(fold_fullwidth);
    RUN(fold_punctuation_and_spaces);
    RUN(fold_keeps_dakuten);
    RUN(fold_invalid_utf8);
    RUN(fold_respects_length);
    RUN(phrase_whole_words);
    RUN(phrase_cjk);
    RUN(phrase_with_folded_input);
    RUN(is_utf8);
    RUN(hash_fnv1a_vectors);
    RUN(html_escape);
    RUN(strip_emoji_removes_emoji);
    RUN(strip_emoji_keeps_symbols);
    RUN(strip_emoji_leaves_no_joiner);
    return check_done();
}
