/* fuzz_catalog_csv: a merchant's catalog.csv (catalog_csv.c, through
 * pl_catalog_parse as a bot load reads it: the CSV reader, then the
 * catalog's validation, whose errors name file:line and column). A catalog
 * that loads is also searched, as a shopper's words would search it; one
 * that does not must say why in UTF-8. The input is the file. */
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "catalog/catalog.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_catalog *catalog = NULL;
    char *err = NULL;
    int rc = pl_catalog_parse((const char *)data, size, "catalog.csv", &catalog, &err);
    fuzz_expect((rc == PL_OK) == (catalog != NULL), "a catalog is made exactly when parsing succeeds");
    fuzz_expect(rc == PL_OK || (err && strncmp(err, "catalog.csv:", 12) == 0),
                "an error names the file (and line)");
    /* the error is the bot's until fixed: /v1/health and parley check show
     * it, in JSON, which only carries UTF-8 */
    fuzz_expect(rc == PL_OK || pl_text_is_utf8(err, strlen(err)), "an error is UTF-8 text");
    if (catalog) {
        static const char *const words[] = {"latte", "", "Crème BRÛLÉE 2", "ラテ"};
        pl_catalog_hit hits[4];
        for (size_t i = 0; i < sizeof words / sizeof *words; i++)
            pl_catalog_search(catalog, words[i], hits, 4);
        fuzz_expect(json_is_array(pl_catalog_products(catalog)), "the products are an array");
    }
    pl_catalog_free(catalog);
    free(err);
    return 0;
}
