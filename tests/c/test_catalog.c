/* test_catalog: parsing, validation and search of products (catalog.h). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "check.h"

static pl_catalog *parse(const char *text) {
    pl_catalog *c = NULL;
    char *err = NULL;
    if (pl_catalog_parse(text, strlen(text), "cat.json", &c, &err) != 0) {
        printf("#   parse failed: %s\n", err);
        free(err);
        return NULL;
    }
    return c;
}

/* Parses text expecting failure; returns the message (new) or NULL. */
static char *parse_error(const char *text) {
    pl_catalog *c = NULL;
    char *err = NULL;
    if (pl_catalog_parse(text, strlen(text), "cat.json", &c, &err) == 0) {
        printf("#   parse unexpectedly succeeded\n");
        pl_catalog_free(c);
        return NULL;
    }
    CHECK(c == NULL);
    return err;
}

/* The message starts with prefix ("cat.json:4:") and contains reason. */
static int error_is(const char *text, const char *prefix, const char *reason) {
    char *err = parse_error(text);
    int ok = err && strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, reason);
    if (!ok) printf("#   got \"%s\", want \"%s ... %s\"\n", err ? err : "(null)", prefix, reason);
    free(err);
    return ok;
}

static const json_t *product(const pl_catalog *c, size_t i) {
    return json_array_get(pl_catalog_products(c), i);
}

static const char *field(const json_t *p, const char *key) {
    return json_string_value(json_object_get(p, key));
}

TEST(parse_valid) {
    pl_catalog *c = parse("{\n"
                          "  \"currency\": \"EUR\",\n"
                          "  \"products\": [\n"
                          "    {\"sku\": \"latte\", \"title\": {\"en\": \"Latte\", \"ja\": \"カフェラテ\"}, \"price\": 380,\n"
                          "     \"tags\": [\"coffee\"], \"stock\": 0, \"image\": \"https://x/latte.jpg\",\n"
                          "     \"options\": {\"size\": [{\"value\": \"s\", \"title\": \"Small\", \"price\": 0},\n"
                          "                            {\"value\": \"l\", \"title\": {\"en\": \"Large\"}, \"price\": 90}]}},\n"
                          "    {\"sku\": \"sencha\", \"title\": \"Sencha\", \"price\": 500, \"currency\": \"JPY\",\n"
                          "     \"description\": {\"en\": \"Green tea\"}}\n"
                          "  ]\n"
                          "}\n");
    CHECK(c != NULL);
    if (!c) return;
    CHECK(json_array_size(pl_catalog_products(c)) == 2);
    CHECK_STR(field(product(c, 0), "sku"), "latte");
    CHECK_STR(field(product(c, 0), "currency"), "EUR"); /* filled in from the catalog */
    CHECK_STR(field(product(c, 1), "sku"), "sencha");
    CHECK_STR(field(product(c, 1), "currency"), "JPY"); /* the product's own wins */
    CHECK(json_integer_value(json_object_get(product(c, 0), "price")) == 380);
    pl_catalog_free(c);
}

TEST(parse_list_form) {
    pl_catalog *c = parse("[{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"currency\": \"USD\"}]");
    CHECK(c != NULL);
    if (!c) return;
    CHECK(json_array_size(pl_catalog_products(c)) == 1);
    CHECK_STR(field(product(c, 0), "currency"), "USD");
    pl_catalog_free(c);
    c = parse("{\"currency\": \"EUR\", \"products\": []}");
    CHECK(c != NULL && json_array_size(pl_catalog_products(c)) == 0);
    pl_catalog_free(c);
}

TEST(parse_empty_and_load) {
    pl_catalog *c = pl_catalog_empty();
    CHECK(json_is_array(pl_catalog_products(c)) && json_array_size(pl_catalog_products(c)) == 0);
    pl_catalog_hit hits[4];
    CHECK(pl_catalog_search(c, "latte", hits, 4) == 0);
    pl_catalog_free(c);

    char path[] = "/tmp/parley-test-catalog-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    const char *text = "{\"currency\": \"EUR\", \"products\": [{\"sku\": \"a\", \"title\": \"A\", \"price\": 1}]}";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char *err = NULL;
    c = NULL;
    CHECK(pl_catalog_load(path, "catalog.json", &c, &err) == 0);
    CHECK(c != NULL && json_array_size(pl_catalog_products(c)) == 1);
    pl_catalog_free(c);
    unlink(path);
    c = NULL;
    CHECK(pl_catalog_load(path, "catalog.json", &c, &err) != 0);
    CHECK(c == NULL && err != NULL);
    free(err);
}

TEST(error_malformed_json) {
    CHECK(error_is("{\n  \"products\": [\n    {\"sku\": }\n  ]\n}", "cat.json:3:", ""));
    CHECK(error_is("{\"items\": []}", "cat.json:1:", "products"));
    CHECK(error_is("\"just a string\"", "cat.json:1:", ""));
    CHECK(error_is("{\"products\": {\"sku\": \"a\"}}", "cat.json:1:", "products"));
}

TEST(error_missing_sku) {
    const char *text = "{\n"
                       "  \"currency\": \"EUR\",\n"
                       "  \"products\": [\n"
                       "    {\"title\": \"No SKU\", \"price\": 100}\n"
                       "  ]\n"
                       "}\n";
    char *err = parse_error(text);
    CHECK(err && strncmp(err, "cat.json:", 9) == 0);
    CHECK(err && strstr(err, "sku must be"));
    CHECK(err && strstr(err, "product 1"));
    free(err);
    CHECK(error_is("[{\"sku\": \"\", \"title\": \"Empty\", \"price\": 1, \"currency\": \"EUR\"}]", "cat.json:",
                   "sku must be"));
    CHECK(error_is("[{\"sku\": 7, \"title\": \"Number\", \"price\": 1, \"currency\": \"EUR\"}]", "cat.json:",
                   "sku must be"));
}

TEST(error_duplicate_sku) {
    const char *text = "{\n"
                       "  \"currency\": \"EUR\",\n"
                       "  \"products\": [\n"
                       "    {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380},\n"
                       "    {\"sku\": \"mocha\", \"title\": \"Mocha\", \"price\": 400},\n"
                       "    {\"sku\": \"latte\", \"title\": \"Latte again\", \"price\": 390}\n"
                       "  ]\n"
                       "}\n";
    char *err = parse_error(text);
    CHECK(err && strstr(err, "twice"));
    CHECK(err && strstr(err, "product 3"));
    CHECK(err && strstr(err, "latte"));
    /* the line is the duplicate's (line 6), not the first occurrence's (line 4) */
    CHECK(err && strncmp(err, "cat.json:6:", 11) == 0);
    if (err) printf("#   message: %s\n", err);
    free(err);
}

TEST(error_float_price) {
    const char *text = "{\n"
                       "  \"currency\": \"EUR\",\n"
                       "  \"products\": [\n"
                       "    {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380},\n"
                       "    {\"sku\": \"mocha\", \"title\": \"Mocha\", \"price\": 4.50}\n"
                       "  ]\n"
                       "}\n";
    CHECK(error_is(text, "cat.json:5:", "price must be a non-negative integer"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"price\": -1, \"currency\": \"EUR\"}]", "cat.json:1:",
                   "price must be"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"price\": \"4.50\", \"currency\": \"EUR\"}]",
                   "cat.json:1:", "price must be"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"currency\": \"EUR\"}]", "cat.json:1:", "price must be"));
}

TEST(error_bad_currency) {
    const char *text = "{\n"
                       "  \"products\": [\n"
                       "    {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380, \"currency\": \"eur\"}\n"
                       "  ]\n"
                       "}\n";
    CHECK(error_is(text, "cat.json:3:", "currency must be an ISO 4217 code"));
    /* a bad catalog default is reported on the product that uses it */
    CHECK(error_is("{\"currency\": \"eur\",\n \"products\": [\n {\"sku\": \"a\", \"title\": \"A\", \"price\": 1}]}",
                   "cat.json:3:", "currency must be"));
    /* no currency anywhere */
    CHECK(error_is("[\n{\"sku\": \"a\", \"title\": \"A\", \"price\": 1}]", "cat.json:2:", "currency must be"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"currency\": \"EURO\"}]", "cat.json:1:",
                   "currency must be"));
}

TEST(error_negative_stock) {
    const char *text = "{\n"
                       "  \"currency\": \"EUR\",\n"
                       "  \"products\": [\n"
                       "    {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380, \"stock\": -1}\n"
                       "  ]\n"
                       "}\n";
    CHECK(error_is(text, "cat.json:4:", "stock must be a non-negative integer"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"currency\": \"EUR\", \"stock\": 2.5}]",
                   "cat.json:1:", "stock must be"));
}

TEST(error_bad_options) {
#define OPT_PRODUCT(opts) \
    "{\"currency\": \"EUR\", \"products\": [\n{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"options\": " opts "}]}"
    CHECK(error_is(OPT_PRODUCT("[\"size\"]"), "cat.json:2:", "options must be an object"));
    CHECK(error_is(OPT_PRODUCT("{\"size\": []}"), "cat.json:2:", "non-empty list"));
    CHECK(error_is(OPT_PRODUCT("{\"size\": \"large\"}"), "cat.json:2:", "non-empty list"));
    CHECK(error_is(OPT_PRODUCT("{\"size\": [{\"title\": \"Large\"}]}"), "cat.json:2:", "string value"));
    CHECK(error_is(OPT_PRODUCT("{\"size\": [{\"value\": \"l\", \"price\": 0.9}]}"), "cat.json:2:",
                   "option price is an integer"));
    CHECK(error_is(OPT_PRODUCT("{\"size\": [{\"value\": \"l\", \"title\": 5}]}"), "cat.json:2:",
                   "option title"));
#undef OPT_PRODUCT
}

TEST(error_other_fields) {
    CHECK(error_is("[{\"sku\": \"a\", \"price\": 1, \"currency\": \"EUR\"}]", "cat.json:1:", "title must be"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": {\"en\": 5}, \"price\": 1, \"currency\": \"EUR\"}]", "cat.json:1:",
                   "title must be"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"currency\": \"EUR\", \"tags\": \"hot\"}]",
                   "cat.json:1:", "tags must be"));
    CHECK(error_is("[{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"currency\": \"EUR\", \"tags\": [1]}]",
                   "cat.json:1:", "tags must be"));
    CHECK(error_is("[\"not an object\"]", "cat.json:1:", "must be an object"));
}

TEST(error_line_points_at_product) {
    /* the sku "milk" appears earlier as a tag; the error is on the product at line 5 */
    const char *text = "{\n"
                       "  \"currency\": \"EUR\",\n"
                       "  \"products\": [\n"
                       "    {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380, \"tags\": [\"milk\"]},\n"
                       "    {\"sku\": \"milk\", \"title\": \"Milk\", \"price\": -5}\n"
                       "  ]\n"
                       "}\n";
    char *err = parse_error(text);
    CHECK(err && strstr(err, "price must be"));
    CHECK(err && strncmp(err, "cat.json:5:", 11) == 0);
    if (err) printf("#   message: %s\n", err);
    free(err);
}

/* --- search ------------------------------------------------------------------ */

static const char *menu =
    "{\"currency\": \"EUR\", \"products\": [\n"
    "  {\"sku\": \"latte\", \"title\": {\"en\": \"Latte\", \"ja\": \"カフェラテ\"}, \"price\": 380,\n"
    "   \"tags\": [\"coffee\", \"milk\"], \"description\": \"Espresso with steamed milk.\"},\n"
    "  {\"sku\": \"matcha_latte\", \"title\": {\"en\": \"Matcha Latte\", \"ja\": \"抹茶ラテ\"}, \"price\": 420,\n"
    "   \"tags\": [\"tea\", \"milk\"]},\n"
    "  {\"sku\": \"cafe_au_lait\", \"title\": \"Café au lait\", \"price\": 350, \"tags\": [\"coffee\"]},\n"
    "  {\"sku\": \"croissant\", \"title\": \"Butter Croissant\", \"price\": 250, \"tags\": [\"pastry\"],\n"
    "   \"description\": \"Flaky and golden.\"},\n"
    "  {\"sku\": \"pain\", \"title\": \"Pain au Chocolat\", \"price\": 280, \"tags\": [\"pastry\", \"chocolate\"]}\n"
    "]}";

static int position_of(const pl_catalog_hit *hits, size_t n, const char *sku) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(hits[i].sku, sku) == 0) return (int)i;
    return -1;
}

TEST(search_ranks_title_phrase_first) {
    pl_catalog *c = parse(menu);
    if (!c) return;
    pl_catalog_hit hits[10];
    size_t n = pl_catalog_search(c, "a large latte please", hits, 10);
    CHECK(n >= 2);
    CHECK(n > 0 && strcmp(hits[0].sku, "latte") == 0);
    int matcha = position_of(hits, n, "matcha_latte");
    CHECK(matcha > 0);
    if (matcha > 0) CHECK(hits[0].score > hits[matcha].score);
    for (size_t i = 1; i < n; i++) CHECK(hits[i - 1].score >= hits[i].score);
    for (size_t i = 0; i < n; i++) CHECK(hits[i].score > 0);
    /* the hit carries the validated product, currency filled in */
    CHECK(n > 0 && strcmp(field(hits[0].data, "currency"), "EUR") == 0);
    /* "matcha latte" names the matcha latte better than the latte */
    n = pl_catalog_search(c, "Matcha Latte!", hits, 10);
    CHECK(n >= 1 && strcmp(hits[0].sku, "matcha_latte") == 0);
    pl_catalog_free(c);
}

TEST(search_accent_and_case_insensitive) {
    pl_catalog *c = parse(menu);
    if (!c) return;
    pl_catalog_hit hits[10];
    size_t n = pl_catalog_search(c, "cafe", hits, 10);
    CHECK(n >= 1 && strcmp(hits[0].sku, "cafe_au_lait") == 0);
    n = pl_catalog_search(c, "CAFÉ AU LAIT", hits, 10);
    CHECK(n >= 1 && strcmp(hits[0].sku, "cafe_au_lait") == 0);
    n = pl_catalog_search(c, "ＬＡＴＴＥ", hits, 10);
    CHECK(n >= 1 && strcmp(hits[0].sku, "latte") == 0);
    pl_catalog_free(c);
}

TEST(search_japanese) {
    pl_catalog *c = parse("{\"currency\": \"JPY\", \"products\": [\n"
                          "  {\"sku\": \"espresso\", \"title\": {\"ja\": \"エスプレッソ\"}, \"price\": 300},\n"
                          "  {\"sku\": \"latte\", \"title\": {\"ja\": \"カフェラテ\"}, \"price\": 450}\n"
                          "]}");
    if (!c) return;
    pl_catalog_hit hits[4];
    size_t n = pl_catalog_search(c, "カフェラテをください", hits, 4);
    CHECK(n == 1 && strcmp(hits[0].sku, "latte") == 0);
    n = pl_catalog_search(c, "ラテ", hits, 4);
    CHECK(n == 1);
    CHECK(n >= 1 && strcmp(hits[0].sku, "latte") == 0);
    n = pl_catalog_search(c, "ラテをください", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "latte") == 0);
    pl_catalog_free(c);
}

TEST(search_tags) {
    pl_catalog *c = parse(menu);
    if (!c) return;
    pl_catalog_hit hits[10];
    size_t n = pl_catalog_search(c, "something with chocolate", hits, 10);
    CHECK(n >= 1 && strcmp(hits[0].sku, "pain") == 0);
    n = pl_catalog_search(c, "tea", hits, 10);
    CHECK(n == 1 && strcmp(hits[0].sku, "matcha_latte") == 0);
    n = pl_catalog_search(c, "coffee", hits, 10);
    CHECK(n == 2);
    CHECK(position_of(hits, n, "latte") >= 0 && position_of(hits, n, "cafe_au_lait") >= 0);
    /* description words count a little */
    n = pl_catalog_search(c, "flaky", hits, 10);
    CHECK(n == 1 && strcmp(hits[0].sku, "croissant") == 0);
    pl_catalog_free(c);
}

TEST(search_no_match) {
    pl_catalog *c = parse(menu);
    if (!c) return;
    pl_catalog_hit hits[10];
    CHECK(pl_catalog_search(c, "a bicycle", hits, 10) == 0);
    CHECK(pl_catalog_search(c, "", hits, 10) == 0);
    CHECK(pl_catalog_search(c, "   ...  ", hits, 10) == 0);
    CHECK(pl_catalog_search(c, "latt\xc3", hits, 10) == 0);
    CHECK(pl_catalog_search(c, "latte", hits, 0) == 0);
    pl_catalog_free(c);
}

TEST(search_ties_keep_catalog_order) {
    pl_catalog *c = parse(menu);
    if (!c) return;
    pl_catalog_hit hits[10];
    size_t n = pl_catalog_search(c, "pastry", hits, 10);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(hits[0].score == hits[1].score);
        CHECK_STR(hits[0].sku, "croissant");
        CHECK_STR(hits[1].sku, "pain");
    }
    pl_catalog_free(c);
    /* same title everywhere: file order decides, whatever the count */
    c = parse("{\"currency\": \"EUR\", \"products\": [\n"
              "{\"sku\": \"t5\", \"title\": \"Tea\", \"price\": 1}, {\"sku\": \"t1\", \"title\": \"Tea\", \"price\": 1},\n"
              "{\"sku\": \"t4\", \"title\": \"Tea\", \"price\": 1}, {\"sku\": \"t2\", \"title\": \"Tea\", \"price\": 1},\n"
              "{\"sku\": \"t3\", \"title\": \"Tea\", \"price\": 1}]}");
    if (!c) return;
    n = pl_catalog_search(c, "tea", hits, 10);
    CHECK(n == 5);
    const char *order[] = {"t5", "t1", "t4", "t2", "t3"};
    for (size_t i = 0; i < n && i < 5; i++) CHECK_STR(hits[i].sku, order[i]);
    /* max cuts the list, keeping the best (first) ones */
    n = pl_catalog_search(c, "tea", hits, 2);
    CHECK(n == 2 && strcmp(hits[0].sku, "t5") == 0 && strcmp(hits[1].sku, "t1") == 0);
    pl_catalog_free(c);
}

int main(void) {
    RUN(parse_valid);
    RUN(parse_list_form);
    RUN(parse_empty_and_load);
    RUN(error_malformed_json);
    RUN(error_missing_sku);
    RUN(error_duplicate_sku);
    RUN(error_float_price);
    RUN(error_bad_currency);
    RUN(error_negative_stock);
    RUN(error_bad_options);
    RUN(error_other_fields);
    RUN(error_line_points_at_product);
    RUN(search_ranks_title_phrase_first);
    RUN(search_accent_and_case_insensitive);
    RUN(search_japanese);
    RUN(search_tags);
    RUN(search_no_match);
    RUN(search_ties_keep_catalog_order);
    return check_done();
}
