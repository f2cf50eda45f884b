/* catalog: a bot's products, parsed and validated from its catalog file
 * (catalog.json, or a spreadsheet's catalog.csv), and the search that finds
 * them by tag or by the shopper's own words.
 *
 * A product: {"sku", "title", "description"?, "price" (minor units),
 * "currency" (ISO 4217), "tags"?, "aliases"?, "stock"?, "image"?,
 * "options"?}. A text (title, description, option title) is a string or an
 * object by locale, where "*" stands for every locale without its own
 * entry. An option is a list of choices {"value", "title"?, "aliases"?,
 * "price"?, "stock"?} (pick one) or {"choices": [...], "multiple": true,
 * "max": 3, "required": false}. Aliases (aliases.h) are a list of strings
 * or an object of lists by locale; the loaded products hold them in the
 * object form {"*": [...], "es": [...]} only.
 *
 * A catalog is immutable once loaded; a reload builds a new one beside the
 * old. Plain C: the Lua binding lives in modules.c and the copy in SQLite is
 * written by the bot loader through store.h. */
#ifndef PL_CATALOG_H
#define PL_CATALOG_H

#include <jansson.h>
#include <stddef.h>

typedef struct pl_catalog pl_catalog;

typedef struct {
    const char *sku;
    const json_t *data; /* the validated product object, currency filled in */
    int score;
    int named; /* the words name the product (its title), not only a tag or description */
} pl_catalog_hit;

/* Parses catalog text: CSV when `name` ends in ".csv" (see catalog_csv.h),
 * else JSON. Both give the same validated product objects. `name` is the
 * file name used in error messages ("catalog.json:12: product 3 (latte):
 * price must be ...", "catalog.csv:5: column C (price): price must be ..."). */
int pl_catalog_parse(const char *text, size_t len, const char *name, pl_catalog **out,
                     char **err);
int pl_catalog_load(const char *path, const char *name, pl_catalog **out, char **err);
/* An empty catalog, for bots without a catalog file. */
pl_catalog *pl_catalog_empty(void);
void pl_catalog_free(pl_catalog *catalog);

/* The products as a JSON array (borrowed), in file order. */
const json_t *pl_catalog_products(const pl_catalog *catalog);

/* The words c:understand looks for (catalog_lexicon.h), built the first
 * time they are asked for; a catalog is one state's, so one thread's. */
struct pl_catalog_lexicon;
const struct pl_catalog_lexicon *pl_catalog_lexicon_of(pl_catalog *catalog);
/* Whether they have been built. */
int pl_catalog_lexicon_built(const pl_catalog *catalog);

/* The stock keys of products ("sku", "sku/option=value") with the counts
 * the catalog gives them: a new object. Commerce keeps the units left. */
json_t *pl_catalog_stock(const json_t *products);

/* Ranks products by how well the shopper's words name them (title phrases,
 * tags, word prefixes, description words; case- and accent-insensitive).
 * A product's aliases, in every locale, count as its titles do (and make
 * it `named`); a choice's aliases do not take part.
 * Fills at most max hits, best first; returns how many. */
size_t pl_catalog_search(const pl_catalog *catalog, const char *words, pl_catalog_hit *hits,
                         size_t max);

#endif
