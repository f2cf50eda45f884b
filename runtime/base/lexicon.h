/* lexicon: a fixed set of folded phrases, and a scan that finds them in
 * folded text word by word, each word exactly or, where the phrase allows
 * it, within a small edit distance ("capuccino" for "cappuccino", "lattes"
 * for "latte"). It is what understanding a shopper's words stands on (see
 * runtime/lua/parley/understand.lua); it knows nothing of what a phrase
 * means, only where it is.
 *
 * Text and phrases are cut into units: a word between spaces, a run of
 * digits on its own ("2lattes" -> "2" "lattes"), and each character of a
 * script written without spaces (CJK) on its own, so "ラテを2つ" is the
 * units ラ テ を 2 つ. A CJK unit and a digit run only ever match exactly.
 *
 * Memory comes from the caller's allocator (a Lua state's, so a bot's
 * lexicon counts against its memory budget). */
#ifndef PL_LEXICON_H
#define PL_LEXICON_H

#include <stddef.h>
#include <stdint.h>

/* The same contract as lua_Alloc: nsize 0 frees, else (re)allocates. */
typedef void *(*pl_lexicon_alloc)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct pl_lexicon pl_lexicon;

/* At most this many units of a text are scanned (the rest is left alone):
 * what a shopper types in one message is far shorter. */
#define PL_LEXICON_MAX_UNITS 128

/* Longest unit, in code points, that a typo may be forgiven in. */
#define PL_LEXICON_MAX_FUZZY_CPS 48

pl_lexicon *pl_lexicon_new(pl_lexicon_alloc alloc, void *ud);
void pl_lexicon_free(pl_lexicon *lex);

/* Adds folded phrase (its units) as the next entry: entries are numbered
 * from 0 in the order added. fuzzy: whether its words forgive typos.
 * Returns the entry's number, or -1 when the phrase has no unit or memory
 * ran out. The same phrase added twice is two entries. */
long pl_lexicon_add(pl_lexicon *lex, const char *folded, int fuzzy);

/* Must be called once after the last add and before the first scan;
 * returns 0 when memory ran out. */
int pl_lexicon_seal(pl_lexicon *lex);

/* A text cut into units: offsets into the folded text. */
typedef struct {
    size_t count;
    struct {
        uint32_t start, len; /* bytes */
    } unit[PL_LEXICON_MAX_UNITS];
} pl_lexicon_units;

void pl_lexicon_cut(const char *folded, pl_lexicon_units *units);

/* One phrase found: units [first, first + count) of the text are entry
 * `entry`, at a total edit distance of `distance` (0: exact). */
typedef struct {
    uint32_t first, count;
    uint32_t entry;
    uint32_t distance;
} pl_lexicon_span;

/* A scan stops (with what it found so far) once its work passes this: a
 * text and a lexicon made to be slow cost at most a few milliseconds, and
 * the caller, who charges *work, sees it was stopped (*work over it). */
#define PL_LEXICON_MAX_WORK 250000

/* Finds phrases in the units of folded text, from left to right: at each
 * place the phrase covering the most units (then the nearest, then the one
 * added first), and goes on after it. Writes at most max spans; returns
 * how many. Deterministic: the same text and lexicon give the same spans.
 * *work gets a measure of the comparisons done (each candidate word and
 * entry, and each distance by the size of its table), for charging. */
size_t pl_lexicon_scan(const pl_lexicon *lex, const char *folded, const pl_lexicon_units *units,
                       pl_lexicon_span *spans, size_t max, size_t *work);

/* Every one-unit phrase each unit of the text matches, exactly, as a
 * plural or with a typo (not only the best, as the scan keeps): for
 * likeness of sentences, where a word may fit several. Writes at most max
 * (unit, 1, entry, distance: 0 exact, 1 plural or typo), unit by unit;
 * returns how many. */
size_t pl_lexicon_words(const pl_lexicon *lex, const char *folded, const pl_lexicon_units *units,
                        pl_lexicon_span *found, size_t max, size_t *work);

/* The edit distance (adjacent transpositions count one) between two
 * UTF-8 strings, or limit + 1 when it is over limit. */
unsigned pl_lexicon_distance(const char *a, size_t alen, const char *b, size_t blen, unsigned limit);

/* How far a typed word may be from a phrase's word of n code points and
 * still match it: none under 5, 1 up to 8, 2 from 9; the typed word has at
 * least 4 code points, and its first letter is the phrase word's (or
 * swapped with the second). A four-letter word forgives only two
 * neighbours swapped ("waht" is "what"; "cosa" is not "coca"). */
unsigned pl_lexicon_allowed(size_t n);

#endif
