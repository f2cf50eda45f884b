/* catalog_lexicon: the words of a catalog that c:understand looks for in
 * what shoppers type (runtime/lua/parley/understand.lua), built in C when
 * the catalog loads, so that neither a turn nor a bot's budgets pay for it
 * however large the catalog: every product's title in every locale, each
 * title word that only that product's titles have, its aliases and tags,
 * its options' names, and their choices' values, titles and aliases. All
 * forgive typos (base/lexicon.h).
 *
 * What a phrase means is kept beside it: one phrase may name a product, a
 * tag, an option and a choice at once ("large" is a choice of every drink
 * that has the size). Strings are borrowed from the catalog's products. */
#ifndef PL_CATALOG_LEXICON_H
#define PL_CATALOG_LEXICON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/lexicon.h"

typedef enum {
    PL_MEANS_PRODUCT, /* its title (a locale's) or an alias */
    PL_MEANS_PART,    /* a word only this product's titles have ("croissant") */
    PL_MEANS_TAG,     /* a tag; `product` is the one product that has it, or none */
    PL_MEANS_OPTION,  /* an option's name ("milk") */
    PL_MEANS_CHOICE,  /* a choice of an option (value, title or alias) */
} pl_means;

#define PL_NO_PRODUCT UINT32_MAX

typedef struct {
    uint8_t kind;       /* pl_means */
    uint32_t product;   /* index in the catalog's products, or PL_NO_PRODUCT */
    const char *name;   /* the tag, or the option's name */
    const char *value;  /* the choice's value */
    const char *locale; /* the locale whose title or alias it is; NULL: every locale's */
} pl_meaning;

typedef struct pl_catalog_lexicon pl_catalog_lexicon;

/* Builds the lexicon of validated products (borrowed for its lifetime). */
pl_catalog_lexicon *pl_catalog_lexicon_build(const json_t *products);
void pl_catalog_lexicon_free(pl_catalog_lexicon *lex);

const pl_lexicon *pl_catalog_lexicon_words(const pl_catalog_lexicon *lex);

/* What entry `entry` means: *out gets its meanings (borrowed); returns how
 * many (0 for an entry out of range). */
size_t pl_catalog_lexicon_meanings(const pl_catalog_lexicon *lex, uint32_t entry, const pl_meaning **out);

/* The entry of a phrase written without spaces (CJK, of 4 or more
 * characters) that `run` (such characters) is a typo of: one character
 * off from 4, two from 8, the nearest first. Returns the entry, or -1;
 * *distance gets the distance. */
long pl_catalog_lexicon_near(const pl_catalog_lexicon *lex, const char *run, size_t len, unsigned *distance);

#endif
