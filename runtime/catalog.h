/* catalog: a bot's products, parsed and validated from its catalog file, and
 * the search that finds them by tag or by the shopper's own words.
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

/* Parses catalog text. `name` is the file name used in error messages
 * ("catalog.json:12: price must be ..."). */
int pl_catalog_parse(const char *text, size_t len, const char *name, pl_catalog **out,
                     char **err);
int pl_catalog_load(const char *path, const char *name, pl_catalog **out, char **err);
/* An empty catalog, for bots without a catalog file. */
pl_catalog *pl_catalog_empty(void);
void pl_catalog_free(pl_catalog *catalog);

/* The products as a JSON array (borrowed), in file order. */
const json_t *pl_catalog_products(const pl_catalog *catalog);

/* Ranks products by how well the shopper's words name them (title phrases,
 * tags, word prefixes, description words; case- and accent-insensitive).
 * Fills at most max hits, best first; returns how many. */
size_t pl_catalog_search(const pl_catalog *catalog, const char *words, pl_catalog_hit *hits,
                         size_t max);

#endif
