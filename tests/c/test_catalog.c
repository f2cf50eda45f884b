/* test_catalog: parsing, validation and search of products (catalog.h). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/aliases.h"
#include "catalog/catalog.h"
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

/* --- options as objects (multiple, max, required) and choice stock ------------- */

TEST(parse_option_objects) {
    pl_catalog *c = parse("{\"currency\": \"EUR\", \"products\": [\n"
                          "{\"sku\": \"pizza\", \"title\": \"Pizza\", \"price\": 800, \"options\": {\n"
                          "  \"size\": [{\"value\": \"regular\", \"price\": 0}, {\"value\": \"large\", \"price\": 300, \"stock\": 4}],\n"
                          "  \"toppings\": {\"choices\": [{\"value\": \"olives\", \"price\": 50}, {\"value\": \"basil\", \"stock\": 0}],\n"
                          "                \"multiple\": true, \"max\": 3, \"required\": false},\n"
                          "  \"crust\": {\"choices\": [{\"value\": \"thin\"}], \"required\": true}}}]}");
    CHECK(c != NULL);
    pl_catalog_free(c);
}

TEST(error_option_objects) {
#define OPT_PRODUCT(opts) \
    "{\"currency\": \"EUR\", \"products\": [\n{\"sku\": \"a\", \"title\": \"A\", \"price\": 1, \"options\": " opts "}]}"
    CHECK(error_is(OPT_PRODUCT("{\"t\": {\"choices\": [{\"value\": \"x\"}], \"max\": 2}}"), "cat.json:2:",
                   "max is for an option with \"multiple\": true"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": {\"choices\": [{\"value\": \"x\"}], \"multiple\": true, \"max\": 0}}"),
                   "cat.json:2:", "max is a positive integer"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": {\"choices\": [{\"value\": \"x\"}], \"multiple\": \"yes\"}}"), "cat.json:2:",
                   "true or false"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": {\"choices\": [{\"value\": \"x\"}], \"mulitple\": true}}"), "cat.json:2:",
                   "nothing else"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": {\"multiple\": true}}"), "cat.json:2:", "non-empty list"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": [{\"value\": \"x\"}, {\"value\": \"x\"}]}"), "cat.json:2:",
                   "option 't': a value appears twice"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": [{\"value\": \"x\", \"stock\": -1}]}"), "cat.json:2:",
                   "stock must be a non-negative integer"));
    CHECK(error_is(OPT_PRODUCT("{\"t\": [{\"value\": \"\"}]}"), "cat.json:2:", "non-empty string value"));
#undef OPT_PRODUCT
}

/* --- aliases ---------------------------------------------------------------------- */

/* The product's field as compact JSON with sorted keys equals want. */
static int field_json_is(const json_t *v, const char *want) {
    char *got = v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    int ok = got && strcmp(got, want) == 0;
    if (!ok) printf("#   got %s, want %s\n", got ? got : "(none)", want);
    free(got);
    return ok;
}

static const json_t *choice_at(const json_t *p, const char *option, size_t i) {
    const json_t *o = json_object_get(json_object_get(p, "options"), option);
    return json_array_get(json_is_array(o) ? o : json_object_get(o, "choices"), i);
}

TEST(aliases_normalized) {
    pl_catalog *c = parse("{\"currency\": \"EUR\", \"products\": [\n"
                          " {\"sku\": \"cappuccino\", \"title\": \"Cappuccino\", \"price\": 350,\n"
                          "  \"aliases\": [\"capu\", \"cappu\"]},\n"
                          " {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380,\n"
                          "  \"aliases\": {\"*\": [\"milky coffee\"], \"es\": [\"café con leche\"], \"pt-BR\": [\"pingado\"],"
                          "   \"es-419\": [\"cortado\"], \"ja\": [\"ラテ\"]},\n"
                          "  \"options\": {\"milk\": [{\"value\": \"oat\", \"title\": \"Oat milk\", \"aliases\": [\"oatly\"]},\n"
                          "                         {\"value\": \"soy\", \"aliases\": {\"es\": [\"soja\"]}},\n"
                          "                         {\"value\": \"whole\"}],\n"
                          "              \"extras\": {\"choices\": [{\"value\": \"shot\", \"aliases\": [\"extra shot\"]}],"
                          "                          \"multiple\": true}}},\n"
                          " {\"sku\": \"tea\", \"title\": \"Tea\", \"price\": 200, \"aliases\": []}\n"
                          "]}");
    CHECK(c != NULL);
    if (!c) return;
    const json_t *cappu = product(c, 0), *latte = product(c, 1), *tea = product(c, 2);
    /* a list is every locale's: Lua always sees locale -> list */
    CHECK(field_json_is(json_object_get(cappu, "aliases"), "{\"*\":[\"capu\",\"cappu\"]}"));
    CHECK(field_json_is(json_object_get(latte, "aliases"),
                        "{\"*\":[\"milky coffee\"],\"es\":[\"café con leche\"],\"es-419\":[\"cortado\"],"
                        "\"ja\":[\"ラテ\"],\"pt-BR\":[\"pingado\"]}"));
    CHECK(field_json_is(json_object_get(choice_at(latte, "milk", 0), "aliases"), "{\"*\":[\"oatly\"]}"));
    CHECK(field_json_is(json_object_get(choice_at(latte, "milk", 1), "aliases"), "{\"es\":[\"soja\"]}"));
    CHECK(json_object_get(choice_at(latte, "milk", 2), "aliases") == NULL);
    CHECK(field_json_is(json_object_get(choice_at(latte, "extras", 0), "aliases"), "{\"*\":[\"extra shot\"]}"));
    CHECK(field_json_is(json_object_get(tea, "aliases"), "{\"*\":[]}"));
    pl_catalog_free(c);
}

/* A product with `aliases` (JSON text) on line 2: the message. */
#define ALIASED(aliases) \
    "{\"currency\": \"EUR\", \"products\": [\n{\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 1, \"aliases\": " \
    aliases "}]}"
#define CHOICE_ALIASED(aliases)                                                                                  \
    "{\"currency\": \"EUR\", \"products\": [\n{\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 1, \"options\": " \
    "{\"milk\": [{\"value\": \"whole\"}, {\"value\": \"oat\", \"aliases\": " aliases "}]}}]}"

/* ["a0", "a1", ...]: count aliases as JSON text into out (room for 2048). */
static void json_list_of_aliases(char *out, int count) {
    size_t n = (size_t)sprintf(out, "[");
    for (int i = 0; i < count; i++) n += (size_t)sprintf(out + n, "%s\"a%d\"", i ? ", " : "", i);
    sprintf(out + n, "]");
}

TEST(error_aliases) {
    const char *at = "cat.json:2: product 1 (latte): ";
    char many[2048], at_most[2048], long_one[256], longest[256];
    json_list_of_aliases(many, 51);
    json_list_of_aliases(at_most, 50);
    /* 101 bytes, and 100 */
    snprintf(long_one, sizeof long_one, "[\"%0101d\"]", 0);
    snprintf(longest, sizeof longest, "[\"%0100d\"]", 0);
    char text[4096];
#define WITH(fmt, arg) (snprintf(text, sizeof text, fmt, arg), text)
    CHECK(error_is(ALIASED("\"capu\""), at, "aliases must be a list of strings (for every locale) or an object"));
    CHECK(error_is(ALIASED("5"), at, "aliases must be a list of strings"));
    CHECK(error_is(ALIASED("[\"capu\", \"\"]"), at, "aliases[1] must be a non-empty string"));
    CHECK(error_is(ALIASED("[\"  \"]"), at, "aliases[0] must be a non-empty string"));
    CHECK(error_is(ALIASED("[7]"), at, "aliases[0] must be a non-empty string"));
    CHECK(error_is(ALIASED("{\"es\": [\"a\", \"b\", \"\"]}"), at, "aliases.es[2] must be a non-empty string"));
    CHECK(error_is(ALIASED("{\"*\": [\"a\", null]}"), at, "aliases[\"*\"][1] must be a non-empty string"));
    CHECK(error_is(ALIASED("{\"es\": \"café\"}"), at, "aliases.es must be a list of strings"));
    CHECK(error_is(ALIASED("[\"!!!\"]"), at, "aliases[0] has no letter or digit a shopper could type"));
    CHECK(error_is(WITH(ALIASED("%s"), long_one), at, "aliases[0] is 101 bytes long; an alias has at most 100"));
    CHECK(error_is(WITH(ALIASED("{\"es\": %s}"), many), at, "aliases.es has 51 aliases; a locale has at most 50"));
    const char *bad_locales[] = {"spanish", "ES", "pt_BR", "pt-br", "e", "", "es-", "*es"};
    for (size_t i = 0; i < sizeof bad_locales / sizeof bad_locales[0]; i++) {
        char reason[96];
        snprintf(reason, sizeof reason, "aliases: '%s' is not a locale code such as es or pt-BR", bad_locales[i]);
        CHECK(error_is(WITH(ALIASED("{\"%s\": [\"x\"]}"), bad_locales[i]), at, reason));
    }
    /* the limits themselves are fine */
    pl_catalog *c = parse(WITH(ALIASED("%s"), longest));
    CHECK(c != NULL);
    pl_catalog_free(c);
    c = parse(WITH(ALIASED("{\"es\": %s}"), at_most));
    CHECK(c != NULL);
    pl_catalog_free(c);
    /* a choice's: the option and the choice are named */
    const char *choice = "cat.json:2: product 1 (latte): option 'milk': choice 'oat': ";
    CHECK(error_is(CHOICE_ALIASED("{\"es\": [\"avena\", \"\"]}"), choice, "aliases.es[1] must be a non-empty string"));
    CHECK(error_is(CHOICE_ALIASED("\"avena\""), choice, "aliases must be a list of strings"));
    CHECK(error_is(CHOICE_ALIASED("{\"Spanish\": [\"avena\"]}"), choice, "'Spanish' is not a locale code"));
    CHECK(error_is(WITH(CHOICE_ALIASED("%s"), many), choice, "aliases has 51 aliases; a locale has at most 50"));
    CHECK(error_is("{\"currency\": \"EUR\", \"products\": [\n{\"sku\": \"a\", \"title\": \"A\", \"price\": 1},\n"
                   "{\"sku\": \"b\", \"title\": \"B\", \"price\": 1, \"options\": {\"t\": {\"choices\": "
                   "[{\"value\": \"x\", \"aliases\": [\"\"]}], \"multiple\": true}}}]}",
                   "cat.json:3: product 2 (b): option 't': choice 'x': ", "aliases[0] must be a non-empty string"));
#undef WITH
}

TEST(alias_rules) {
    char detail[80];
    CHECK(pl_alias_problem("capu", 4, detail, sizeof detail) == NULL);
    CHECK(pl_alias_problem("ラテ", strlen("ラテ"), detail, sizeof detail) == NULL);
    CHECK_STR(pl_alias_problem("", 0, detail, sizeof detail), "must be a non-empty string");
    CHECK_STR(pl_alias_problem("caf\xc3", 4, detail, sizeof detail), "is not UTF-8 text");
    CHECK_STR(pl_alias_problem("a\0b", 3, detail, sizeof detail), "is not UTF-8 text");
    CHECK_STR(pl_alias_problem("- -", 3, detail, sizeof detail), "has no letter or digit a shopper could type");
    CHECK(pl_alias_locale_valid("*") && pl_alias_locale_valid("en") && pl_alias_locale_valid("fil") &&
          pl_alias_locale_valid("pt-BR") && pl_alias_locale_valid("es-419"));
    CHECK(!pl_alias_locale_valid("") && !pl_alias_locale_valid("**") && !pl_alias_locale_valid("english") &&
          !pl_alias_locale_valid("es-4190") && !pl_alias_locale_valid("pt-B"));
}

TEST(search_by_alias) {
    pl_catalog *c = parse("{\"currency\": \"EUR\", \"products\": [\n"
                          " {\"sku\": \"cappuccino\", \"title\": \"Cappuccino\", \"price\": 350, \"aliases\": [\"capu\"]},\n"
                          " {\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380,\n"
                          "  \"aliases\": {\"es\": [\"café con leche\"], \"ja\": [\"ミルクコーヒー\"]},\n"
                          "  \"options\": {\"milk\": [{\"value\": \"oat\", \"aliases\": [\"avena\"]}]}},\n"
                          " {\"sku\": \"flat_white\", \"title\": \"Flat white\", \"price\": 390, \"tags\": [\"capu\"]}\n"
                          "]}");
    if (!c) return;
    pl_catalog_hit hits[4];
    /* an alias names its product as its title does */
    size_t n = pl_catalog_search(c, "two capu please", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "cappuccino") == 0 && hits[0].named);
    /* (a tag with the same word only finds, it does not name) */
    int flat = position_of(hits, n, "flat_white");
    CHECK(flat > 0 && !hits[flat].named);
    /* in any locale, folded like a title */
    n = pl_catalog_search(c, "un CAFE con leche por favor", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "latte") == 0 && hits[0].named);
    n = pl_catalog_search(c, "ミルクコーヒーをください", hits, 4);
    CHECK(n == 1 && strcmp(hits[0].sku, "latte") == 0 && hits[0].named);
    /* a choice's aliases do not find the product */
    CHECK(pl_catalog_search(c, "avena", hits, 4) == 0);
    pl_catalog_free(c);
}

/* --- CSV ------------------------------------------------------------------------ */

static pl_catalog *parse_as(const char *text, const char *name) {
    pl_catalog *c = NULL;
    char *err = NULL;
    if (pl_catalog_parse(text, strlen(text), name, &c, &err) != 0) {
        printf("#   %s failed: %s\n", name, err);
        free(err);
        return NULL;
    }
    return c;
}

/* The CSV and the JSON catalog give equal products; prints both if not. */
static int same_products(const char *csv, const char *json) {
    pl_catalog *a = parse_as(csv, "catalog.csv"), *b = parse_as(json, "catalog.json");
    int same = a && b && json_equal((json_t *)pl_catalog_products(a), (json_t *)pl_catalog_products(b));
    if (a && b && !same) {
        char *x = json_dumps(pl_catalog_products(a), JSON_SORT_KEYS | JSON_COMPACT);
        char *y = json_dumps(pl_catalog_products(b), JSON_SORT_KEYS | JSON_COMPACT);
        printf("#   csv:  %s\n#   json: %s\n", x, y);
        free(x);
        free(y);
    }
    pl_catalog_free(a);
    pl_catalog_free(b);
    return same;
}

static int csv_error_is(const char *text, const char *prefix, const char *reason) {
    pl_catalog *c = NULL;
    char *err = NULL;
    int failed = pl_catalog_parse(text, strlen(text), "catalog.csv", &c, &err) != 0;
    int ok = failed && c == NULL && err && strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, reason);
    if (!ok) printf("#   got \"%s\", want \"%s ... %s\"\n", err ? err : "(parsed)", prefix, reason);
    pl_catalog_free(c);
    free(err);
    return ok;
}

TEST(csv_every_column) {
    const char *csv = "sku,title,title:ja,description,description:ja,price,currency,tags,stock,image,option:size\n"
                      "latte,Latte,カフェラテ,Espresso and milk.,エスプレッソとミルク,380,EUR,coffee | milk,12,"
                      "https://x/latte.jpg,small | large +90\n"
                      "tea,Green tea,,,,250,EUR,tea,,,\n";
    const char *json =
        "{\"products\": [\n"
        "{\"sku\": \"latte\", \"title\": {\"*\": \"Latte\", \"ja\": \"カフェラテ\"},\n"
        " \"description\": {\"*\": \"Espresso and milk.\", \"ja\": \"エスプレッソとミルク\"}, \"price\": 380,\n"
        " \"currency\": \"EUR\", \"tags\": [\"coffee\", \"milk\"], \"stock\": 12, \"image\": \"https://x/latte.jpg\",\n"
        " \"options\": {\"size\": [{\"value\": \"small\", \"price\": 0}, {\"value\": \"large\", \"price\": 90}]}},\n"
        "{\"sku\": \"tea\", \"title\": \"Green tea\", \"price\": 250, \"currency\": \"EUR\", \"tags\": [\"tea\"]}]}";
    CHECK(same_products(csv, json));
    /* columns in any order, headers in any case, note columns ignored */
    CHECK(same_products("# note,PRICE,Currency,Title,SKU,\n"
                        "keep cold,100,USD,Milk,milk,\n",
                        "[{\"sku\": \"milk\", \"title\": \"Milk\", \"price\": 100, \"currency\": \"USD\"}]"));
}

TEST(csv_quoting) {
    /* RFC 4180: quoted separators, "" escapes, a line break inside a cell,
     * CRLF line ends, a byte order mark, blank rows, short rows */
    const char *csv = "\xEF\xBB\xBFsku,title,description,price,currency\r\n"
                      "\r\n"
                      "pie,\"Pie, apple\",\"The \"\"best\"\" pie,\r\nwarm\",420,EUR\r\n"
                      ",,,,\r\n"
                      "bun, Bun ,,150,EUR\r\n"
                      "roll,Roll,,90,EUR";
    const char *json = "[{\"sku\": \"pie\", \"title\": \"Pie, apple\", \"description\": \"The \\\"best\\\" pie,\\r\\nwarm\",\n"
                       "  \"price\": 420, \"currency\": \"EUR\"},\n"
                       " {\"sku\": \"bun\", \"title\": \"Bun\", \"price\": 150, \"currency\": \"EUR\"},\n"
                       " {\"sku\": \"roll\", \"title\": \"Roll\", \"price\": 90, \"currency\": \"EUR\"}]";
    CHECK(same_products(csv, json));
    /* LF only; cells left off the end of a row are empty */
    CHECK(same_products("sku,title,price,currency,stock\nbun,Bun,150,EUR\n",
                        "[{\"sku\": \"bun\", \"title\": \"Bun\", \"price\": 150, \"currency\": \"EUR\"}]"));
    /* a spreadsheet that saves with ';' (or tabs) */
    CHECK(same_products("sku;title;price;currency;tags\nbun;\"Bun; sweet\";150;EUR;a|b\n",
                        "[{\"sku\": \"bun\", \"title\": \"Bun; sweet\", \"price\": 150, \"currency\": \"EUR\","
                        " \"tags\": [\"a\", \"b\"]}]"));
    CHECK(same_products("sku\ttitle\tprice\tcurrency\nbun\tBun, sweet\t150\tEUR\n",
                        "[{\"sku\": \"bun\", \"title\": \"Bun, sweet\", \"price\": 150, \"currency\": \"EUR\"}]"));
    /* with tabs between cells, an empty cell before a quoted one stays empty */
    CHECK(same_products("sku\tdescription\ttitle\tprice\tcurrency\nbun\t\t\"Bun\t\"\"B\"\"\"\t150\tEUR\n",
                        "[{\"sku\": \"bun\", \"title\": \"Bun\\t\\\"B\\\"\", \"price\": 150, \"currency\": \"EUR\"}]"));
    /* spaces around a quoted cell */
    CHECK(same_products("sku,title,price,currency\nbun,  \"Bun, sweet\"  ,150,EUR\n",
                        "[{\"sku\": \"bun\", \"title\": \"Bun, sweet\", \"price\": 150, \"currency\": \"EUR\"}]"));
}

TEST(csv_localized_titles) {
    /* only language columns: an object without "*" */
    CHECK(same_products("sku,title:en,title:ja,price,currency\n"
                        "latte,Latte,カフェラテ,380,JPY\n"
                        "mocha,Mocha,,400,JPY\n",
                        "[{\"sku\": \"latte\", \"title\": {\"en\": \"Latte\", \"ja\": \"カフェラテ\"}, \"price\": 380,"
                        "  \"currency\": \"JPY\"},"
                        " {\"sku\": \"mocha\", \"title\": {\"en\": \"Mocha\"}, \"price\": 400, \"currency\": \"JPY\"}]"));
    /* a plain title with a language beside it: "*" is every other locale */
    CHECK(same_products("sku,title,title:fr,price,currency\n"
                        "cafe,Coffee,Café,300,EUR\n"
                        "tea,Tea,,200,EUR\n",
                        "[{\"sku\": \"cafe\", \"title\": {\"*\": \"Coffee\", \"fr\": \"Café\"}, \"price\": 300,"
                        "  \"currency\": \"EUR\"},"
                        " {\"sku\": \"tea\", \"title\": \"Tea\", \"price\": 200, \"currency\": \"EUR\"}]"));
}

TEST(csv_options_notation) {
    const char *csv =
        "sku,title,price,currency,option:size,option:size:ja,option:toppings,options,options:ja\n"
        "pizza,Pizza,800,EUR,regular = Regular | large = Large +300 stock 4,regular = 普通 | large = 大,"
        "\"[multiple, max 3] olives = Olives +50 | basil +30 stock 0 | nduja = Spicy nduja +90\","
        "crust: [required] classic | gluten_free = Gluten-free +250; cut: slices | whole -20,"
        "crust: gluten_free = グルテンフリー\n";
    const char *json =
        "[{\"sku\": \"pizza\", \"title\": \"Pizza\", \"price\": 800, \"currency\": \"EUR\", \"options\": {\n"
        "  \"size\": [{\"value\": \"regular\", \"title\": {\"*\": \"Regular\", \"ja\": \"普通\"}, \"price\": 0},\n"
        "           {\"value\": \"large\", \"title\": {\"*\": \"Large\", \"ja\": \"大\"}, \"price\": 300, \"stock\": 4}],\n"
        "  \"toppings\": {\"choices\": [{\"value\": \"olives\", \"title\": \"Olives\", \"price\": 50},\n"
        "                             {\"value\": \"basil\", \"price\": 30, \"stock\": 0},\n"
        "                             {\"value\": \"nduja\", \"title\": \"Spicy nduja\", \"price\": 90}],\n"
        "               \"multiple\": true, \"max\": 3},\n"
        "  \"crust\": {\"choices\": [{\"value\": \"classic\", \"price\": 0},\n"
        "                          {\"value\": \"gluten_free\", \"title\": {\"*\": \"Gluten-free\", \"ja\": \"グルテンフリー\"},"
        "                           \"price\": 250}], \"required\": true},\n"
        "  \"cut\": [{\"value\": \"slices\", \"price\": 0}, {\"value\": \"whole\", \"price\": -20}]}}]";
    CHECK(same_products(csv, json));
    /* "multiple" alone; stock before the price; a product without options */
    CHECK(same_products("sku,title,price,currency,option:extras\n"
                        "bagel,Bagel,300,EUR,[multiple] cheese stock 2 +80 | ham\n"
                        "water,Water,100,EUR,\n",
                        "[{\"sku\": \"bagel\", \"title\": \"Bagel\", \"price\": 300, \"currency\": \"EUR\", \"options\":"
                        "  {\"extras\": {\"choices\": [{\"value\": \"cheese\", \"price\": 80, \"stock\": 2},"
                        "  {\"value\": \"ham\", \"price\": 0}], \"multiple\": true}}},"
                        " {\"sku\": \"water\", \"title\": \"Water\", \"price\": 100, \"currency\": \"EUR\"}]"));
}

TEST(csv_errors_name_line_and_column) {
    const char *head = "sku,title,price,currency,stock,option:size\n";
    char text[1024];
#define ROWS(rows) (snprintf(text, sizeof text, "%s%s", head, rows), text)
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,\nb,B,4.50,EUR,,\n"), "catalog.csv:3: column C (price):",
                       "price must be a non-negative integer in minor units (450 for 4.50 EUR); to write 4.50, "
                       "name the column price_major"));
    CHECK(csv_error_is(ROWS("a,A,4.5,KWD,,\n"), "catalog.csv:2: column C (price):", "(4500 for 4.5 KWD)"));
    CHECK(csv_error_is(ROWS("a,A,4.50,JPY,,\n"), "catalog.csv:2: column C (price):", "price must be"));
    CHECK(csv_error_is(ROWS("a,A,,EUR,,\n"), "catalog.csv:2: column C (price):", "price must be"));
    CHECK(csv_error_is(ROWS("a,A,-5,EUR,,\n"), "catalog.csv:2: column C (price):", "price must be"));
    CHECK(csv_error_is(ROWS("a,A,1,eur,,\n"), "catalog.csv:2: column D (currency):", "ISO 4217"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,lots,\n"), "catalog.csv:2: column E (stock):", "stock must be"));
    CHECK(csv_error_is(ROWS(",A,1,EUR,,\n"), "catalog.csv:2: column A (sku):", "sku must be"));
    CHECK(csv_error_is(ROWS("a,,1,EUR,,\n"), "catalog.csv:2: column B (title):", "title must be"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,\nb,B,1,EUR,,\na,A again,1,EUR,,\n"), "catalog.csv:4: column A (sku):",
                       "appears twice"));
    /* a quoted cell over two lines moves the lines of the rows after it */
    CHECK(csv_error_is(ROWS("a,\"A\nstill A\",1,EUR,,\nb,B,x,EUR,,\n"), "catalog.csv:4: column C (price):",
                       "price must be"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,\nb,\"B,1,EUR,,\n"), "catalog.csv:3: column B (title):", "never closed"));
    CHECK(csv_error_is(ROWS("a,\"A\" and more,1,EUR,,\n"), "catalog.csv:2: column B (title):", "after a closing quote"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small,extra\n"), "catalog.csv:2: column G:", "more cells than the header"));
    CHECK(csv_error_is(ROWS("a,\xC3(,1,EUR,,\n"), "catalog.csv:2: column B (title):", "not UTF-8"));
    /* the options notation */
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small | large +0.90\n"), "catalog.csv:2: column F (option:size):",
                       "whole minor units"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small | large 90\n"), "catalog.csv:2: column F (option:size):",
                       "has its sign"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small | Extra large\n"), "catalog.csv:2: column F (option:size):",
                       "write Extra = large"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small || large\n"), "catalog.csv:2: column F (option:size):",
                       "an empty choice"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small | small +10\n"), "catalog.csv:2: column F (option:size):",
                       "option 'size': a value appears twice"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,[several] small\n"), "catalog.csv:2: column F (option:size):",
                       "'several' is not an option flag"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,[max 2 small\n"), "catalog.csv:2: column F (option:size):", "no ']'"));
    CHECK(csv_error_is(ROWS("a,A,1,EUR,,small stock many\n"), "catalog.csv:2: column F (option:size):",
                       "'stock' is followed by"));
#undef ROWS
    CHECK(csv_error_is("sku,title,price,currency,options\na,A,1,EUR,size small | large\n",
                       "catalog.csv:2: column E (options):", "write name: choices"));
    CHECK(csv_error_is("sku,title,price,currency,options,option:size\na,A,1,EUR,size: s,s | m\n",
                       "catalog.csv:2: column F (option:size):", "given twice"));
    CHECK(csv_error_is("sku,title,price,currency,option:size,option:size:ja\na,A,1,EUR,s | m,l = 大\n",
                       "catalog.csv:2: column F (option:size:ja):", "'l' is not a choice of the option 'size'"));
    CHECK(csv_error_is("sku,title,price,currency,option:size:ja\na,A,1,EUR,s = 小\n",
                       "catalog.csv:2: column E (option:size:ja):", "no option 'size'"));
    CHECK(csv_error_is("sku,title,price,currency,options:ja\na,A,1,EUR,size: s 小\n",
                       "catalog.csv:2: column E (options:ja):", "no option 'size'"));
    /* the header */
    CHECK(csv_error_is("sku,title,prize,currency\n", "catalog.csv:1: column C (prize):",
                       "'prize' is not a column parley knows"));
    CHECK(csv_error_is("sku,title,currency\n", "catalog.csv:1:", "no price column"));
    CHECK(csv_error_is("sku,price,currency\n", "catalog.csv:1:", "no title (or title:<locale>) column"));
    CHECK(csv_error_is("sku,title,price,currency,title\n", "catalog.csv:1: column E (title):", "already column B"));
    CHECK(csv_error_is("sku,title:,price,currency\n", "catalog.csv:1: column B (title:):", "title:ja"));
    CHECK(csv_error_is("sku,title,price:eur,currency\n", "catalog.csv:1: column C (price:eur):", "no language"));
    CHECK(csv_error_is("", "catalog.csv:1:", "empty"));
    CHECK(csv_error_is("\n\n", "catalog.csv:1:", "empty"));
    CHECK(csv_error_is("latte,Latte,380,EUR\n", "catalog.csv:1: column A (latte):", "must name the columns"));
}

/* price_major: prices in the currency's units, with ISO 4217's digits */
TEST(csv_major_prices) {
    const char *csv = "sku,title,price_major,currency,option:size\n"
                      "shoe,Runner,129.00,EUR,38 | 46 +5 | 47 +7.5\n"
                      "sock,Sock,\"4,5\",EUR,\n"
                      "tea,Tea,450,JPY,small | large +100\n"
                      "mug,Mug,1000,JPY,\n"
                      "dates,Dates,1.250,KWD,box | crate +0.5\n"
                      "pen,Pen,0.5,USD,blue | red -0.05\n"
                      "gift,Gift,1000.50,EUR,\n";
    const char *json = "{\"products\": ["
                       "{\"sku\": \"shoe\", \"title\": \"Runner\", \"price\": 12900, \"currency\": \"EUR\","
                       " \"options\": {\"size\": [{\"value\": \"38\", \"price\": 0}, {\"value\": \"46\", \"price\": 500},"
                       " {\"value\": \"47\", \"price\": 750}]}},"
                       "{\"sku\": \"sock\", \"title\": \"Sock\", \"price\": 450, \"currency\": \"EUR\"},"
                       "{\"sku\": \"tea\", \"title\": \"Tea\", \"price\": 450, \"currency\": \"JPY\","
                       " \"options\": {\"size\": [{\"value\": \"small\", \"price\": 0}, {\"value\": \"large\", \"price\": 100}]}},"
                       "{\"sku\": \"mug\", \"title\": \"Mug\", \"price\": 1000, \"currency\": \"JPY\"},"
                       "{\"sku\": \"dates\", \"title\": \"Dates\", \"price\": 1250, \"currency\": \"KWD\","
                       " \"options\": {\"size\": [{\"value\": \"box\", \"price\": 0}, {\"value\": \"crate\", \"price\": 500}]}},"
                       "{\"sku\": \"pen\", \"title\": \"Pen\", \"price\": 50, \"currency\": \"USD\","
                       " \"options\": {\"size\": [{\"value\": \"blue\", \"price\": 0}, {\"value\": \"red\", \"price\": -5}]}},"
                       "{\"sku\": \"gift\", \"title\": \"Gift\", \"price\": 100050, \"currency\": \"EUR\"}]}";
    CHECK(same_products(csv, json));
    /* the ';' files of spreadsheets that write 129,00 */
    CHECK(same_products("sku;title;price_major;currency\nshoe;Runner;129,00;EUR\n",
                        "[{\"sku\": \"shoe\", \"title\": \"Runner\", \"price\": 12900, \"currency\": \"EUR\"}]"));
    /* a comma with three digits after four is a decimal comma: no thousands group has four digits */
    CHECK(same_products("sku;title;price_major;currency\ndates;Dates;1250,500;KWD\n",
                        "[{\"sku\": \"dates\", \"title\": \"Dates\", \"price\": 1250500, \"currency\": \"KWD\"}]"));
}

TEST(csv_major_price_errors) {
    const char *head = "sku,title,price_major,currency,option:size\n";
    char text[1024];
#define ROWS(rows) (snprintf(text, sizeof text, "%s%s", head, rows), text)
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,\nb,B,4.9999,EUR,\n"), "catalog.csv:3: column C (price_major):",
                       "'4.9999': a price in EUR has at most 2 decimals, as in 129.00"));
    CHECK(csv_error_is(ROWS("a,A,450.5,JPY,\n"), "catalog.csv:2: column C (price_major):",
                       "'450.5': a price in JPY has no decimals (JPY has no minor unit), as in 129"));
    CHECK(csv_error_is(ROWS("a,A,1.2505,BHD,\n"), "catalog.csv:2: column C (price_major):",
                       "a price in BHD has at most 3 decimals, as in 129.000"));
    CHECK(csv_error_is(ROWS("a,A,€129,EUR,\n"), "catalog.csv:2: column C (price_major):",
                       "'€129' is not a price in EUR: write digits and at most one decimal point, as in 129.00"));
    CHECK(csv_error_is(ROWS("a,A,\"1,299.00\",USD,\n"), "catalog.csv:2: column C (price_major):",
                       "no thousands separator"));
    CHECK(csv_error_is(ROWS("a,A,12.,EUR,\n"), "catalog.csv:2: column C (price_major):", "is not a price"));
    /* no price is read with a thousands separator taken for a decimal mark, nor with extra zeros */
    CHECK(csv_error_is(ROWS("a,A,\"1,000\",JPY,\n"), "catalog.csv:2: column C (price_major):",
                       "'1,000' is ambiguous: is ',' a thousands separator? Write 1000 (no thousands separator; JPY "
                       "has no decimals)"));
    CHECK(csv_error_is(ROWS("a,A,\"1,000\",USD,\n"), "catalog.csv:2: column C (price_major):",
                       "'1,000' is ambiguous: is ',' a thousands separator or a decimal comma? Write 1000 (no "
                       "thousands separator) or 1.00 (USD has 2 decimals, after a decimal point)"));
    CHECK(csv_error_is(ROWS("a,A,1.000,EUR,\n"), "catalog.csv:2: column C (price_major):",
                       "'1.000' is ambiguous: is '.' a thousands separator or a decimal point? Write 1000"));
    CHECK(csv_error_is(ROWS("a,A,\"1,250\",KWD,\n"), "catalog.csv:2: column C (price_major):",
                       "'1,250' is ambiguous: is ',' a thousands separator or a decimal comma? Write 1250 (no "
                       "thousands separator) or 1.250 (KWD has 3 decimals, after a decimal point)"));
    CHECK(csv_error_is(ROWS("a,A,12.500,JPY,\n"), "catalog.csv:2: column C (price_major):",
                       "'12.500' is ambiguous: is '.' a thousands separator? Write 12500"));
    CHECK(csv_error_is(ROWS("a,A,450.00,JPY,\n"), "catalog.csv:2: column C (price_major):",
                       "'450.00': a price in JPY has no decimals"));
    CHECK(csv_error_is(ROWS("a,A,129.0000,EUR,\n"), "catalog.csv:2: column C (price_major):",
                       "'129.0000': a price in EUR has at most 2 decimals"));
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,s | l +1.500\n"), "catalog.csv:2: column E (option:size):",
                       "'+1.500' is ambiguous: is '.' a thousands separator or a decimal point? Write +1500"));
    /* a price change the title would swallow */
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,s | l = Large +.50\n"), "catalog.csv:2: column E (option:size):",
                       "'+.50' is no price change: write it with its sign, digits and no space, after the title, "
                       "as in +0.50 (EUR)"));
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,s | l = Large + 0.50\n"), "catalog.csv:2: column E (option:size):",
                       "'+ 0.50' is no price change"));
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,s | l = Large - 0.50 stock 3\n"), "catalog.csv:2: column E (option:size):",
                       "'- 0.50' is no price change"));
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,s | l = Large +0.5.0\n"), "catalog.csv:2: column E (option:size):",
                       "'+0.5.0' is not a price change in EUR"));
    CHECK(csv_error_is(ROWS("a,A,-5.00,EUR,\n"), "catalog.csv:2: column C (price_major):",
                       "'-5.00': a price is never negative"));
    CHECK(csv_error_is(ROWS("a,A,,EUR,\n"), "catalog.csv:2: column C (price_major):",
                       "the price is missing: write it in EUR, as in 129.00"));
    CHECK(csv_error_is(ROWS("a,A,9999999999999,EUR,\n"), "catalog.csv:2: column C (price_major):", "no price"));
    CHECK(csv_error_is(ROWS("a,A,1.00,,\n"), "catalog.csv:2: column D (currency):",
                       "says how many decimals the price_major column has"));
    CHECK(csv_error_is(ROWS("a,A,1.00,eur,\n"), "catalog.csv:2: column D (currency):", "ISO 4217"));
    /* option price changes are in the same units */
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,small | large +0.905\n"), "catalog.csv:2: column E (option:size):",
                       "'+0.905': a price change in EUR has at most 2 decimals, as in +129.00"));
    CHECK(csv_error_is(ROWS("a,A,100,JPY,small | large +0.5\n"), "catalog.csv:2: column E (option:size):",
                       "a price change in JPY has no decimals"));
    CHECK(csv_error_is(ROWS("a,A,1.00,EUR,small | large 0.90\n"), "catalog.csv:2: column E (option:size):",
                       "has its sign, in EUR (+0.50, -0.20)"));
#undef ROWS
    /* one price column */
    CHECK(csv_error_is("sku,title,price,currency,price_major\n", "catalog.csv:1: column E (price_major):",
                       "prices are in one column, and column C has them"));
    CHECK(csv_error_is("sku,title,currency\n", "catalog.csv:1:",
                       "no price column: price (in minor units, 12900 for 129.00) or price_major"));
    CHECK(csv_error_is("sku,title,price_major:ja,currency\n", "catalog.csv:1: column C (price_major:ja):",
                       "no language"));
    /* minor units keep their own words */
    CHECK(csv_error_is("sku,title,price,currency,option:size\na,A,100,EUR,s | l +0.90\n",
                       "catalog.csv:2: column E (option:size):", "to write +0.50, give the prices in a price_major column"));
    CHECK(csv_error_is("sku,title,price,currency,option:size\na,A,100,EUR,s | l = Large + 90\n",
                       "catalog.csv:2: column E (option:size):", "'+ 90' is no price change"));
    CHECK(csv_error_is("sku,title,price,currency\na,A,\"1,000\",EUR\n", "catalog.csv:2: column C (price):",
                       "written with no thousands separator: 1000, not 1,000"));
}

TEST(csv_aliases) {
    /* product aliases like tags; a choice's in option_aliases columns, also
     * for an option of the options column; languages beside "*" */
    const char *csv =
        "sku,title,price,currency,aliases,aliases:es,option:milk,options,option_aliases:milk,"
        "option_aliases:milk:es,option_aliases:size:pt-BR\n"
        "latte,Latte,380,EUR,milky coffee | latté,café con leche,whole | oat = Oat milk +40 | soy,"
        "size: small | large +90,oat = oat milk | oatly; soy = soya,oat = avena; soy = soja,large = grande\n"
        "capu,Cappuccino,350,EUR,capu||cappu,,,,,,\n"
        "tea,Tea,200,EUR,,té,,,,,\n";
    const char *json =
        "[{\"sku\": \"latte\", \"title\": \"Latte\", \"price\": 380, \"currency\": \"EUR\",\n"
        "  \"aliases\": {\"*\": [\"milky coffee\", \"latté\"], \"es\": [\"café con leche\"]},\n"
        "  \"options\": {\"milk\": [{\"value\": \"whole\", \"price\": 0},\n"
        "    {\"value\": \"oat\", \"title\": \"Oat milk\", \"price\": 40,\n"
        "     \"aliases\": {\"*\": [\"oat milk\", \"oatly\"], \"es\": [\"avena\"]}},\n"
        "    {\"value\": \"soy\", \"price\": 0, \"aliases\": {\"*\": [\"soya\"], \"es\": [\"soja\"]}}],\n"
        "   \"size\": [{\"value\": \"small\", \"price\": 0},\n"
        "    {\"value\": \"large\", \"price\": 90, \"aliases\": {\"pt-BR\": [\"grande\"]}}]}},\n"
        " {\"sku\": \"capu\", \"title\": \"Cappuccino\", \"price\": 350, \"currency\": \"EUR\",\n"
        "  \"aliases\": [\"capu\", \"cappu\"]},\n"
        " {\"sku\": \"tea\", \"title\": \"Tea\", \"price\": 200, \"currency\": \"EUR\", \"aliases\": {\"es\": [\"té\"]}}]";
    CHECK(same_products(csv, json));
    /* found by them, as from JSON */
    pl_catalog *c = parse_as(csv, "catalog.csv");
    if (!c) return;
    pl_catalog_hit hits[4];
    size_t n = pl_catalog_search(c, "un cafe con leche", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "latte") == 0 && hits[0].named);
    n = pl_catalog_search(c, "cappu", hits, 4);
    CHECK(n == 1 && strcmp(hits[0].sku, "capu") == 0 && hits[0].named);
    CHECK(pl_catalog_search(c, "avena", hits, 4) == 0);
    pl_catalog_free(c);
}

TEST(csv_alias_errors) {
    char text[4096], long_alias[128], many[512];
    snprintf(long_alias, sizeof long_alias, "%0101d", 0);
    size_t m = 0;
    for (int i = 0; i < 51; i++) m += (size_t)snprintf(many + m, sizeof many - m, "%sa%d", i ? " | " : "", i);
    const char *head = "sku,title,price,currency,aliases,option:milk,option_aliases:milk\n";
#define ROW(fmt, ...) (snprintf(text, sizeof text, "%s" fmt "\n", head, __VA_ARGS__), text)
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,capu | %s,,", "!?"), "catalog.csv:2: column E (aliases):",
                       "alias '!?' has no letter or digit a shopper could type"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,%s,,", long_alias), "catalog.csv:2: column E (aliases):",
                       "alias '0000000000000000000000000000000000000000...' is 101 bytes long; an alias has at most 100"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,\"%s\",,", many), "catalog.csv:2: column E (aliases):",
                       "51 aliases; there are at most 50 in a language"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,,whole | oat,oat = %s", "avena | ..."),
                       "catalog.csv:2: column G (option_aliases:milk):", "choice 'oat': alias '...' has no letter"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,,,oat = %s", "avena"), "catalog.csv:2: column G (option_aliases:milk):",
                       "this product has no option 'milk' to give aliases to"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,,whole | oat,%s = avena", "rice"),
                       "catalog.csv:2: column G (option_aliases:milk):", "'rice' is not a choice of the option 'milk'"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,,whole | oat,%s", "avena"),
                       "catalog.csv:2: column G (option_aliases:milk):",
                       "'avena': write value = alias | alias; value = alias, as in oat = oat milk | avena"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,,whole | oat,%s", "= avena"),
                       "catalog.csv:2: column G (option_aliases:milk):", "write value = alias"));
    CHECK(csv_error_is(ROW("latte,Latte,1,EUR,,whole | oat,\"%s\"", "oat = avena; oat = oatly"),
                       "catalog.csv:2: column G (option_aliases:milk):", "the choice 'oat' has its aliases twice"));
#undef ROW
    /* the header: a locale code, and once each */
    CHECK(csv_error_is("sku,title,price,currency,aliases:Spanish\n", "catalog.csv:1: column E (aliases:Spanish):",
                       "'Spanish' is not a locale code such as es or pt-BR"));
    CHECK(csv_error_is("sku,title,price,currency,option_aliases:milk:pt_BR\n",
                       "catalog.csv:1: column E (option_aliases:milk:pt_BR):", "'pt_BR' is not a locale code"));
    CHECK(csv_error_is("sku,title,price,currency,option_aliases:\n", "catalog.csv:1: column E (option_aliases:):",
                       "write option_aliases:<name> or option_aliases:<name>:<locale>"));
    CHECK(csv_error_is("sku,title,price,currency,aliases:es,aliases:es\n", "catalog.csv:1: column F (aliases:es):",
                       "this column is already column E"));
    CHECK(csv_error_is("sku,title,price,currency,option_aliases:milk,option_aliases:milk\n",
                       "catalog.csv:1: column F (option_aliases:milk):", "this column is already column E"));
}

TEST(csv_load_by_file_name) {
    char path[] = "/tmp/parley-test-catalog-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    const char *text = "sku,title,price,currency\nlatte,Latte,380,EUR\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char *err = NULL;
    pl_catalog *c = NULL;
    CHECK(pl_catalog_load(path, "catalog.CSV", &c, &err) == 0);
    CHECK(c != NULL && json_array_size(pl_catalog_products(c)) == 1);
    pl_catalog_free(c);
    c = NULL;
    /* the same text named .json is read as JSON (and is none) */
    CHECK(pl_catalog_load(path, "catalog.json", &c, &err) != 0);
    CHECK(c == NULL && err && strncmp(err, "catalog.json:1:", 15) == 0);
    free(err);
    unlink(path);
}

TEST(csv_search_in_two_locales) {
    pl_catalog *c = parse_as("sku,title,title:ja,description,price,currency,tags\n"
                             "brulee,Crème brûlée,クレームブリュレ,Vanilla custard.,550,EUR,dessert\n"
                             "cafe,Café crème,カフェクレーム,,320,EUR,coffee\n"
                             "matcha,Matcha latte,抹茶ラテ,Ceremonial grade.,480,EUR,tea\n",
                             "catalog.csv");
    if (!c) return;
    pl_catalog_hit hits[4];
    size_t n = pl_catalog_search(c, "a CREME BRULEE please", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "brulee") == 0 && hits[0].named);
    n = pl_catalog_search(c, "café", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "cafe") == 0);
    n = pl_catalog_search(c, "抹茶ラテをください", hits, 4);
    CHECK(n >= 1 && strcmp(hits[0].sku, "matcha") == 0);
    n = pl_catalog_search(c, "ブリュレ", hits, 4);
    CHECK(n == 1 && strcmp(hits[0].sku, "brulee") == 0);
    n = pl_catalog_search(c, "custard", hits, 4);
    CHECK(n == 1 && strcmp(hits[0].sku, "brulee") == 0 && !hits[0].named);
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
    RUN(parse_option_objects);
    RUN(error_option_objects);
    RUN(aliases_normalized);
    RUN(error_aliases);
    RUN(alias_rules);
    RUN(search_by_alias);
    RUN(csv_every_column);
    RUN(csv_quoting);
    RUN(csv_localized_titles);
    RUN(csv_options_notation);
    RUN(csv_errors_name_line_and_column);
    RUN(csv_major_prices);
    RUN(csv_major_price_errors);
    RUN(csv_aliases);
    RUN(csv_alias_errors);
    RUN(csv_load_by_file_name);
    RUN(csv_search_in_two_locales);
    return check_done();
}
