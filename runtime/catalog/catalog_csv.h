/* catalog_csv: reads a catalog kept as a spreadsheet's CSV (RFC 4180: a
 * header row naming the columns, quoted fields with "" escapes, CRLF or LF
 * line ends, UTF-8) into the very JSON product objects a catalog.json
 * holds, for catalog.c to validate like any other. It remembers the line
 * each product starts on and what each column is, so that every error can
 * name file:line and the column (by its spreadsheet letter and header).
 *
 * Used by catalog.c only; the notation is documented in docs/catalog.md
 * and at the top of catalog_csv.c. */
#ifndef PL_CATALOG_CSV_H
#define PL_CATALOG_CSV_H

#include <jansson.h>
#include <stddef.h>

typedef struct pl_csv_origin pl_csv_origin;

/* Reads the products of CSV text as a new JSON array (not yet validated:
 * a price cell of the minor-units column that is no number stays text for
 * the validator to name); *origin gets where each came from (new,
 * pl_catalog_csv_origin_free). Prices of a price_major column are turned
 * into minor units here, with the row currency's ISO 4217 digits
 * (money.h). Returns NULL with *err ("name:line: column C (price): ...")
 * when the text is no CSV catalog: a quote left open, an unknown column, a
 * bad options cell, a price in major units that is none, both price
 * columns, a decimal price under the minor-units column. */
json_t *pl_catalog_csv_read(const char *text, size_t len, const char *name, pl_csv_origin **origin,
                            char **err);

/* Where product i's field came from: "name:line: column C (price)"; for
 * "options" the column of that option (new string). */
char *pl_catalog_csv_where(const pl_csv_origin *origin, size_t product, const char *field,
                           const char *option);

void pl_catalog_csv_origin_free(pl_csv_origin *origin);

#endif
