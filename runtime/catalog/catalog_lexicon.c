/* catalog_lexicon: a catalog's words for understanding; see
 * catalog_lexicon.h. Each raw string is folded once (a size's "Small" of
 * 40,000 products is one phrase), and a phrase keeps each meaning once. */
#include "catalog_lexicon.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/common.h"
#include "base/map.h"
#include "base/text.h"

typedef struct {
    pl_meaning *list;
    uint32_t n, cap;
} meanings;

typedef struct {
    uint32_t entry;
    char *folded;
    size_t len;
    size_t ncp;
} cjk_phrase;

struct pl_catalog_lexicon {
    pl_lexicon *words;
    meanings *per_entry;
    size_t nentries, entries_cap;
    cjk_phrase *cjk;
    size_t ncjk, cjk_cap;
};

typedef struct {
    pl_catalog_lexicon *lex;
    pl_map *by_raw;    /* raw string -> entry + 1 (or NO_ENTRY) */
    pl_map *by_folded; /* folded phrase -> entry + 1 */
} builder;

#define NO_ENTRY ((void *)(uintptr_t)-1)

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    void *np = realloc(p, ncap * elem);
    if (!np) abort();
    *cap = ncap;
    return np;
}

static void *plain_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

static size_t count_cps(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

/* True for a phrase of CJK characters only. */
static int all_cjk(const char *s, size_t len) {
    for (size_t pos = 0; pos < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), &cp);
        if (step <= 0 || !pl_text_is_cjk(cp)) return 0;
        pos += (size_t)step;
    }
    return len > 0;
}

static void note_cjk(pl_catalog_lexicon *lex, uint32_t entry, const char *folded) {
    size_t len = strlen(folded), ncp = count_cps(folded, len);
    if (ncp < 4 || ncp > PL_LEXICON_MAX_FUZZY_CPS || !all_cjk(folded, len)) return;
    lex->cjk = grow(lex->cjk, &lex->cjk_cap, lex->ncjk + 1, sizeof *lex->cjk);
    lex->cjk[lex->ncjk++] = (cjk_phrase){entry, pl_strdup(folded), len, ncp};
}

/* The entry of a folded phrase, added when new; -1 when it has no unit. */
static long folded_entry(builder *b, const char *folded) {
    uintptr_t got = (uintptr_t)pl_map_get(b->by_folded, folded);
    if (got) return (long)got - 1;
    long e = pl_lexicon_add(b->lex->words, folded, 1);
    if (e < 0) return -1;
    pl_catalog_lexicon *lex = b->lex;
    lex->per_entry = grow(lex->per_entry, &lex->entries_cap, (size_t)e + 1, sizeof *lex->per_entry);
    lex->per_entry[e] = (meanings){0};
    lex->nentries = (size_t)e + 1;
    pl_map_put(b->by_folded, folded, (void *)(uintptr_t)(e + 1));
    note_cjk(lex, (uint32_t)e, folded);
    return e;
}

/* The entry of a raw string (folded once, whoever says it again). */
static long raw_entry(builder *b, const char *raw) {
    if (!raw || !*raw) return -1;
    void *got = pl_map_get(b->by_raw, raw);
    if (got == NO_ENTRY) return -1;
    if (got) return (long)(uintptr_t)got - 1;
    char *folded = pl_text_fold(raw, strlen(raw));
    long e = folded && *folded ? folded_entry(b, folded) : -1;
    free(folded);
    pl_map_put(b->by_raw, raw, e < 0 ? NO_ENTRY : (void *)(uintptr_t)(e + 1));
    return e;
}

static int same_text(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static int same_meaning(const pl_meaning *a, const pl_meaning *m) {
    return a->kind == m->kind && a->product == m->product && same_text(a->name, m->name) &&
           same_text(a->value, m->value) && same_text(a->locale, m->locale);
}

static void mean(builder *b, long e, pl_meaning m) {
    if (e < 0) return;
    meanings *ms = &b->lex->per_entry[e];
    for (uint32_t i = 0; i < ms->n; i++)
        if (same_meaning(&ms->list[i], &m)) return;
    size_t cap = ms->cap;
    ms->list = grow(ms->list, &cap, ms->n + 1, sizeof *ms->list);
    ms->cap = (uint32_t)cap;
    ms->list[ms->n++] = m;
}

/* The locale a localized text or alias list is for: NULL for every one. */
static const char *locale_of(const char *key) { return key && strcmp(key, "*") != 0 ? key : NULL; }

/* Calls fn for a localized text: a string (every locale's), or each
 * locale's, with the meaning's locale set. */
static void each_text(const json_t *v, void (*fn)(builder *, const char *, pl_meaning), builder *b, pl_meaning m) {
    if (json_is_string(v)) {
        fn(b, json_string_value(v), m);
        return;
    }
    const char *key;
    const json_t *text;
    json_object_foreach((json_t *)v, key, text) {
        if (!json_is_string(text)) continue;
        m.locale = locale_of(key);
        fn(b, json_string_value(text), m);
    }
}

/* Each alias of normalized aliases ({locale: [...]}). */
static void each_alias(const json_t *aliases, void (*fn)(builder *, const char *, pl_meaning), builder *b,
                       pl_meaning m) {
    const char *key;
    const json_t *list;
    json_object_foreach((json_t *)aliases, key, list) {
        size_t i;
        const json_t *a;
        m.locale = locale_of(key);
        json_array_foreach(list, i, a) if (json_is_string(a)) fn(b, json_string_value(a), m);
    }
}

static void add_phrase(builder *b, const char *raw, pl_meaning m) { mean(b, raw_entry(b, raw), m); }

/* An option's name, or a choice's value, as a shopper writes it
 * ("gluten_free" -> "gluten free"). */
static void add_name(builder *b, const char *name, pl_meaning m) {
    char *spaced = pl_strdup(name);
    if (!spaced) abort();
    for (char *p = spaced; *p; p++)
        if (*p == '_') *p = ' ';
    add_phrase(b, spaced, m);
    free(spaced);
}

static void add_options(builder *b, const json_t *options) {
    const char *name;
    const json_t *option;
    json_object_foreach((json_t *)options, name, option) {
        add_name(b, name, (pl_meaning){PL_MEANS_OPTION, PL_NO_PRODUCT, name, NULL, NULL});
        const json_t *choices = json_is_array(option) ? option : json_object_get(option, "choices");
        size_t i;
        const json_t *choice;
        json_array_foreach(choices, i, choice) {
            const char *value = json_string_value(json_object_get(choice, "value"));
            if (!value) continue;
            pl_meaning m = {PL_MEANS_CHOICE, PL_NO_PRODUCT, name, value, NULL};
            add_name(b, value, m);
            each_text(json_object_get(choice, "title"), add_phrase, b, m);
            each_alias(json_object_get(choice, "aliases"), add_phrase, b, m);
        }
    }
}

/* --- words of titles and tags, counted over every product ------------------- */

#define MANY ((void *)(uintptr_t)-1)

typedef struct {
    pl_map *owner; /* word or tag -> product index + 1, or MANY */
    uint32_t index;
} owners;

static void own(owners *o, const char *key) {
    void *had = pl_map_get(o->owner, key);
    void *mine = (void *)(uintptr_t)(o->index + 1);
    if (!had) pl_map_put(o->owner, key, mine);
    else if (had != mine) pl_map_put(o->owner, key, MANY);
}

static int word_worth_owning(const char *w) {
    size_t len = strlen(w);
    return count_cps(w, len) >= 4 && strspn(w, "0123456789") != len;
}

/* A title's first and last words (not numbers: "Sicilian cannoli (2)"):
 * the head of its name in most languages ("Butter Croissant", "Cannoli
 * siciliani"); the words between are too often ordinary ("house", "red"). */
static void own_title_words(owners *o, const char *title) {
    char *folded = pl_text_fold(title, strlen(title));
    if (!folded) return;
    char *first = NULL, *last = NULL;
    char *save = NULL;
    for (char *w = strtok_r(folded, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (strspn(w, "0123456789") == strlen(w)) continue;
        if (!first) first = w;
        last = w;
    }
    if (first && last != first) {
        if (word_worth_owning(first)) own(o, first);
        if (word_worth_owning(last)) own(o, last);
    }
    free(folded);
}

static void count_owners(const json_t *products, owners *words, owners *tags) {
    size_t i;
    const json_t *p;
    json_array_foreach(products, i, p) {
        words->index = tags->index = (uint32_t)i;
        const json_t *title = json_object_get(p, "title");
        if (json_is_string(title)) {
            own_title_words(words, json_string_value(title));
        } else {
            const char *key;
            const json_t *t;
            json_object_foreach((json_t *)title, key, t) if (json_is_string(t)) own_title_words(words, json_string_value(t));
        }
        size_t k;
        const json_t *tag;
        json_array_foreach(json_object_get(p, "tags"), k, tag) if (json_is_string(tag)) own(tags, json_string_value(tag));
    }
}

/* A word of one product's titles only names that product. */
static void add_part(const char *word, void *owner, void *ud) {
    if (owner == MANY) return;
    mean(ud, folded_entry(ud, word), (pl_meaning){PL_MEANS_PART, (uint32_t)((uintptr_t)owner - 1), NULL, NULL, NULL});
}

/* --- the whole ---------------------------------------------------------------- */

static void add_product(builder *b, uint32_t index, const json_t *p) {
    pl_meaning named = {PL_MEANS_PRODUCT, index, NULL, NULL, NULL};
    each_text(json_object_get(p, "title"), add_phrase, b, named);
    each_alias(json_object_get(p, "aliases"), add_phrase, b, named);
    add_options(b, json_object_get(p, "options"));
}

static void add_tags(builder *b, const json_t *products, pl_map *tag_owner) {
    size_t i;
    const json_t *p;
    json_array_foreach(products, i, p) {
        size_t k;
        const json_t *tag;
        json_array_foreach(json_object_get(p, "tags"), k, tag) {
            const char *name = json_string_value(tag);
            if (!name) continue;
            void *owner = pl_map_get(tag_owner, name);
            uint32_t only = owner == MANY || !owner ? PL_NO_PRODUCT : (uint32_t)((uintptr_t)owner - 1);
            add_name(b, name, (pl_meaning){PL_MEANS_TAG, only, name, NULL, NULL});
        }
    }
}

pl_catalog_lexicon *pl_catalog_lexicon_build(const json_t *products) {
    pl_catalog_lexicon *lex = calloc(1, sizeof *lex);
    if (!lex) abort();
    lex->words = pl_lexicon_new(plain_alloc, NULL);
    if (!lex->words) abort();
    builder b = {lex, pl_map_new(), pl_map_new()};
    size_t i;
    const json_t *p;
    json_array_foreach(products, i, p) add_product(&b, (uint32_t)i, p);
    owners words = {pl_map_new(), 0}, tags = {pl_map_new(), 0};
    count_owners(products, &words, &tags);
    pl_map_each(words.owner, add_part, &b);
    add_tags(&b, products, tags.owner);
    pl_map_free(words.owner);
    pl_map_free(tags.owner);
    pl_map_free(b.by_raw);
    pl_map_free(b.by_folded);
    if (!pl_lexicon_seal(lex->words)) abort();
    return lex;
}

void pl_catalog_lexicon_free(pl_catalog_lexicon *lex) {
    if (!lex) return;
    for (size_t i = 0; i < lex->nentries; i++) free(lex->per_entry[i].list);
    free(lex->per_entry);
    for (size_t i = 0; i < lex->ncjk; i++) free(lex->cjk[i].folded);
    free(lex->cjk);
    pl_lexicon_free(lex->words);
    free(lex);
}

const pl_lexicon *pl_catalog_lexicon_words(const pl_catalog_lexicon *lex) { return lex->words; }

size_t pl_catalog_lexicon_meanings(const pl_catalog_lexicon *lex, uint32_t entry, const pl_meaning **out) {
    if (entry >= lex->nentries) {
        *out = NULL;
        return 0;
    }
    *out = lex->per_entry[entry].list;
    return lex->per_entry[entry].n;
}

long pl_catalog_lexicon_near(const pl_catalog_lexicon *lex, const char *run, size_t len, unsigned *distance) {
    size_t n = count_cps(run, len);
    long best = -1;
    unsigned best_d = 0;
    if (n < 3 || n > PL_LEXICON_MAX_FUZZY_CPS) return -1;
    for (size_t i = 0; i < lex->ncjk; i++) {
        const cjk_phrase *c = &lex->cjk[i];
        if ((c->ncp > n ? c->ncp - n : n - c->ncp) > 2) continue;
        unsigned limit = c->ncp >= 8 ? 2 : 1;
        unsigned d = pl_lexicon_distance(run, len, c->folded, c->len, limit);
        if (d <= limit && (best < 0 || d < best_d)) {
            best = (long)c->entry;
            best_d = d;
        }
    }
    *distance = best_d;
    return best;
}
