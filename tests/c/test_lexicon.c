/* test_lexicon: units, edit distance, and finding phrases in folded text
 * exactly and with typos (lexicon.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lexicon.h"
#include "base/text.h"
#include "check.h"

static size_t allocated;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    if (ptr) allocated -= osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    allocated += nsize;
    return realloc(ptr, nsize);
}

/* The units of folded text, joined by '|'. */
static char *units_of(const char *folded) {
    static char out[512];
    pl_lexicon_units u;
    pl_lexicon_cut(folded, &u);
    out[0] = '\0';
    for (size_t i = 0; i < u.count; i++) {
        if (i) strcat(out, "|");
        strncat(out, folded + u.unit[i].start, u.unit[i].len);
    }
    return out;
}

TEST(units) {
    CHECK_STR(units_of("two large lattes"), "two|large|lattes");
    CHECK_STR(units_of("2lattes x2"), "2|lattes|x|2");
    CHECK_STR(units_of("ラテを2つ"), "ラ|テ|を|2|つ");
    CHECK_STR(units_of("lサイズ 10個"), "l|サ|イ|ズ|10|個");
    CHECK_STR(units_of(""), "");
}

TEST(units_stop_at_the_limit) {
    char text[PL_LEXICON_MAX_UNITS * 4 + 16] = "";
    for (int i = 0; i < PL_LEXICON_MAX_UNITS + 5; i++) strcat(text, i ? " ab" : "ab");
    pl_lexicon_units u;
    pl_lexicon_cut(text, &u);
    CHECK(u.count == PL_LEXICON_MAX_UNITS);
    /* the last unit kept is whole */
    CHECK(u.unit[PL_LEXICON_MAX_UNITS - 1].len == 2);
}

TEST(distance) {
    CHECK(pl_lexicon_distance("cappuccino", 10, "capuccino", 9, 2) == 1);
    CHECK(pl_lexicon_distance("espresso", 8, "expresso", 8, 2) == 1);
    CHECK(pl_lexicon_distance("order", 5, "ordre", 5, 1) == 1); /* a transposition is one */
    CHECK(pl_lexicon_distance("latte", 5, "lager", 5, 1) == 2);  /* over: limit + 1 */
    CHECK(pl_lexicon_distance("café", 5, "cafe", 4, 1) == 1);    /* code points, not bytes */
    CHECK(pl_lexicon_distance("a", 1, "abcdef", 6, 2) == 3);
    CHECK(pl_lexicon_allowed(4) == 0 && pl_lexicon_allowed(5) == 1 && pl_lexicon_allowed(8) == 1 &&
          pl_lexicon_allowed(9) == 2);
}

static pl_lexicon *sample(void) {
    pl_lexicon *lex = pl_lexicon_new(counting_alloc, NULL);
    CHECK(pl_lexicon_add(lex, "latte", 1) == 0);
    CHECK(pl_lexicon_add(lex, "matcha latte", 1) == 1);
    CHECK(pl_lexicon_add(lex, "cappuccino", 1) == 2);
    CHECK(pl_lexicon_add(lex, "large", 1) == 3);
    CHECK(pl_lexicon_add(lex, "two", 0) == 4);
    CHECK(pl_lexicon_add(lex, "three", 0) == 5);
    CHECK(pl_lexicon_add(lex, "カフェラテ", 1) == 6);
    CHECK(pl_lexicon_add(lex, "ラテ", 1) == 7);
    CHECK(pl_lexicon_add(lex, "a couple of", 0) == 8);
    CHECK(pl_lexicon_add(lex, "a", 0) == 9);
    CHECK(pl_lexicon_add(lex, "   ", 0) == -1);
    CHECK(pl_lexicon_seal(lex));
    return lex;
}

/* The spans found in text, as "entry@first+count~distance" joined by ' '. */
static char *spans_of(const pl_lexicon *lex, const char *folded) {
    static char out[512];
    pl_lexicon_units u;
    pl_lexicon_span spans[32];
    size_t work;
    pl_lexicon_cut(folded, &u);
    size_t n = pl_lexicon_scan(lex, folded, &u, spans, 32, &work);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[64];
        snprintf(one, sizeof one, "%s%u@%u+%u~%u", i ? " " : "", spans[i].entry, spans[i].first, spans[i].count,
                 spans[i].distance);
        strcat(out, one);
    }
    return out;
}

TEST(scan_exact_longest_first) {
    pl_lexicon *lex = sample();
    CHECK_STR(spans_of(lex, "two large lattes"), "4@0+1~0 3@1+1~0 0@2+1~0");
    CHECK_STR(spans_of(lex, "a matcha latte"), "9@0+1~0 1@1+2~0");
    CHECK_STR(spans_of(lex, "a couple of latte"), "8@0+3~0 0@3+1~0");
    CHECK_STR(spans_of(lex, "nothing here"), "");
    pl_lexicon_free(lex);
}

TEST(scan_typos_only_where_allowed) {
    pl_lexicon *lex = sample();
    CHECK_STR(spans_of(lex, "capuccino pls"), "2@0+1~1");
    CHECK_STR(spans_of(lex, "lrage latte"), "3@0+1~1 0@1+1~0");
    CHECK_STR(spans_of(lex, "macha latte"), "1@0+2~1");
    CHECK_STR(spans_of(lex, "two capuccinos"), "4@0+1~0 2@1+1~1"); /* a typo in a plural */
    /* the built-in words are exact: "there" is not "three" */
    CHECK_STR(spans_of(lex, "there"), "");
    /* nor does a word with another first letter; two swapped ones do */
    CHECK_STR(spans_of(lex, "frappuccino"), "");
    CHECK_STR(spans_of(lex, "alrge"), "3@0+1~1");
    /* short words never match loosely */
    CHECK_STR(spans_of(lex, "lat"), "");
    /* and a phrase word under 5 letters is spelt right: "cosa" is not "coca" */
    CHECK_STR(spans_of(lex, "tow"), "");
    pl_lexicon_free(lex);
    lex = pl_lexicon_new(counting_alloc, NULL);
    CHECK(pl_lexicon_add(lex, "coca", 1) == 0 && pl_lexicon_add(lex, "what", 1) == 1 && pl_lexicon_seal(lex));
    CHECK_STR(spans_of(lex, "cosa"), "");
    CHECK_STR(spans_of(lex, "waht"), "1@0+1~1");
    CHECK_STR(spans_of(lex, "hwat"), "1@0+1~1");
    pl_lexicon_free(lex);
}

TEST(scan_cjk) {
    pl_lexicon *lex = sample();
    CHECK_STR(spans_of(lex, "ラテを2つ"), "7@0+2~0");
    CHECK_STR(spans_of(lex, "カフェラテ"), "6@0+5~0");
    pl_lexicon_free(lex);
}

TEST(memory_comes_back) {
    allocated = 0;
    pl_lexicon *lex = sample();
    CHECK(allocated > 0);
    pl_lexicon_free(lex);
    CHECK(allocated == 0);
}

TEST(many_phrases) {
    pl_lexicon *lex = pl_lexicon_new(counting_alloc, NULL);
    char phrase[64];
    for (int i = 0; i < 500; i++) {
        snprintf(phrase, sizeof phrase, "words%d other%d", i, i);
        CHECK(pl_lexicon_add(lex, phrase, 1) == i);
    }
    CHECK(pl_lexicon_seal(lex));
    /* "words42" is two units, "words" and "42" */
    CHECK_STR(spans_of(lex, "wrods42 other42"), "42@0+4~1");
    pl_lexicon_free(lex);
}

TEST(work_is_bounded) {
    /* 3,000 long words alike but for their ends, and 128 typed words near
     * them all: the scan stops at its limit rather than comparing them all */
    pl_lexicon *lex = pl_lexicon_new(counting_alloc, NULL);
    char phrase[128];
    for (int i = 0; i < 3000; i++) {
        snprintf(phrase, sizeof phrase, "abcdefghijklmnopqrstuvwxyzabcdefghij%c%c%c", 'a' + i % 26, 'a' + i / 26 % 26,
                 'a' + i / 676);
        CHECK(pl_lexicon_add(lex, phrase, 1) == i);
    }
    CHECK(pl_lexicon_seal(lex));
    char *text = malloc(128 * 48 + 1);
    text[0] = '\0';
    for (int i = 0; i < 128; i++) strcat(text, i ? " abcdefghijklmnopqrstuvwxyzabcdefghijzzz" : "abcdefghijklmnopqrstuvwxyzabcdefghijzzz");
    pl_lexicon_units u;
    pl_lexicon_span spans[PL_LEXICON_MAX_UNITS];
    size_t work;
    pl_lexicon_cut(text, &u);
    pl_lexicon_scan(lex, text, &u, spans, PL_LEXICON_MAX_UNITS, &work);
    CHECK(work > PL_LEXICON_MAX_WORK);
    CHECK(work < 2 * PL_LEXICON_MAX_WORK);
    free(text);
    pl_lexicon_free(lex);
}

static size_t budget;

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    if (nsize > osize && allocated + nsize - (ptr ? osize : 0) > budget) return NULL;
    return counting_alloc(ud, ptr, osize, nsize);
}

TEST(memory_refused) {
    allocated = 0;
    budget = 4096;
    pl_lexicon *lex = pl_lexicon_new(budget_alloc, NULL);
    char phrase[64];
    long last = 0;
    for (int i = 0; i < 1000 && last >= 0; i++) {
        snprintf(phrase, sizeof phrase, "phrase number %d", i);
        last = pl_lexicon_add(lex, phrase, 1);
    }
    CHECK(last == -1);
    CHECK(!pl_lexicon_seal(lex));
    CHECK_STR(spans_of(lex, "phrase number 1"), ""); /* a broken lexicon finds nothing */
    pl_lexicon_free(lex);
    CHECK(allocated == 0);
}

int main(void) {
    RUN(units);
    RUN(units_stop_at_the_limit);
    RUN(distance);
    RUN(scan_exact_longest_first);
    RUN(scan_typos_only_where_allowed);
    RUN(scan_cjk);
    RUN(memory_comes_back);
    RUN(many_phrases);
    RUN(work_is_bounded);
    RUN(memory_refused);
    return check_done();
}
