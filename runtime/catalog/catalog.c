/* catalog: parsing, validation and word search of a bot's products; see
 * catalog.h. Every string compared is folded by text.c first. */
#define _GNU_SOURCE
#include "catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/map.h"
#include "base/text.h"
#include "aliases.h"
#include "catalog_csv.h"
#include "catalog_lexicon.h"

typedef struct {
    char **titles; /* folded title in each locale, and each alias */
    size_t ntitles;
    char **tags; /* folded tags */
    size_t ntags;
    char *title_words; /* all folded titles and aliases, space separated */
    char *description; /* all folded descriptions, space separated */
} search_terms;

struct pl_catalog {
    json_t *products; /* array of validated product objects */
    search_terms *terms; /* one per product */
    size_t count;
    pl_catalog_lexicon *lexicon; /* c:understand's words, built on first use */
};

/* The 1-based line of the (nth+1)-th `"sku": "<sku>"` pair in text, or 1. */
static int line_of_sku(const char *text, const char *sku, size_t nth) {
    size_t slen = strlen(sku);
    for (const char *p = strstr(text, "\"sku\""); p; p = strstr(p + 5, "\"sku\"")) {
        const char *v = p + 5;
        while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
        if (*v++ != ':') continue;
        while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
        if (*v != '"' || strncmp(v + 1, sku, slen) != 0 || v[1 + slen] != '"') continue;
        if (nth-- > 0) continue;
        int line = 1;
        for (const char *c = text; c < p; c++) line += *c == '\n';
        return line;
    }
    return 1;
}

/* A text field may be a string or an object of strings by locale. */
static int valid_localized(const json_t *v, int required) {
    if (!v) return !required;
    if (json_is_string(v)) return json_string_length(v) > 0;
    if (!json_is_object(v) || json_object_size(v) == 0) return 0;
    const char *locale;
    json_t *s;
    json_object_foreach((json_t *)v, locale, s) if (!json_is_string(s)) return 0;
    return 1;
}

static int valid_currency(const char *c) {
    return c && strlen(c) == 3 && isupper((unsigned char)c[0]) && isupper((unsigned char)c[1]) &&
           isupper((unsigned char)c[2]);
}

/* What is wrong with a product: the reason, the field at fault (a key of
 * the product) and, for "options", the option's name. A reason made for
 * this product (an alias's path, a choice's value) is kept in detail and
 * wins over reason, which then only says that something is wrong. */
typedef struct {
    const char *reason; /* NULL when the product is valid */
    const char *field;
    const char *option;
    char detail[256];
} problem;

static problem bad(const char *field, const char *reason) { return (problem){reason, field, NULL, ""}; }

static const char *problem_text(const problem *pb) { return pb->detail[0] ? pb->detail : pb->reason; }

/* Puts the normal form of an object's "aliases" in place (see aliases.h):
 * NULL, or a short reason with the whole one in detail (size DETAIL),
 * prefixed by `whose` ("choice 'oat': "). */
#define DETAIL sizeof(((problem *)0)->detail)
static const char *normalize_aliases(json_t *owner, const char *whose, char *detail) {
    json_t *aliases = json_object_get(owner, "aliases");
    if (!aliases) return NULL;
    char why[200];
    json_t *normal = pl_aliases_normalize(aliases, why, sizeof why);
    if (!normal) {
        snprintf(detail, DETAIL, "%s%s", whose, why);
        return "bad aliases";
    }
    json_object_set_new(owner, "aliases", normal);
    return NULL;
}

/* Checks an option's choices, normalizing their aliases: NULL, or a
 * reason (static) that detail (size DETAIL) may say more precisely. */
static const char *check_choices(json_t *choices, char *detail) {
    if (!json_is_array(choices) || json_array_size(choices) == 0)
        return "each option must be a non-empty list of {value, title, price} "
               "(or {\"choices\": [...], \"multiple\": true, \"max\": 3, \"required\": false})";
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        const char *value = json_string_value(json_object_get(c, "value"));
        if (!value || !*value) return "every option choice needs a non-empty string value";
        if (!valid_localized(json_object_get(c, "title"), 0))
            return "an option title must be a string or an object of strings by locale";
        json_t *price = json_object_get(c, "price");
        if (price && !json_is_integer(price)) return "an option price is an integer in minor units (cents)";
        json_t *stock = json_object_get(c, "stock");
        if (stock && (!json_is_integer(stock) || json_integer_value(stock) < 0))
            return "an option choice's stock must be a non-negative integer (leave it out for unlimited)";
        for (size_t j = 0; j < i; j++)
            if (strcmp(value, json_string_value(json_object_get(json_array_get(choices, j), "value"))) == 0)
                return "a value appears twice among the option's choices";
        char whose[120];
        snprintf(whose, sizeof whose, "choice '%.64s': ", value);
        const char *reason = normalize_aliases(c, whose, detail);
        if (reason) return reason;
    }
    return NULL;
}

/* {"choices": [...], "multiple": bool, "max": n, "required": bool} */
static const char *check_option_object(json_t *option, char *detail) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)option, key, v) {
        if (strcmp(key, "choices") != 0 && strcmp(key, "multiple") != 0 && strcmp(key, "max") != 0 &&
            strcmp(key, "required") != 0)
            return "an option object has choices, multiple, max and required, nothing else";
    }
    json_t *multiple = json_object_get(option, "multiple"), *required = json_object_get(option, "required");
    json_t *max = json_object_get(option, "max");
    if ((multiple && !json_is_boolean(multiple)) || (required && !json_is_boolean(required)))
        return "an option's multiple and required are true or false";
    if (max && (!json_is_integer(max) || json_integer_value(max) < 1))
        return "an option's max is a positive integer (how many choices a shopper may take)";
    if (max && !json_is_true(multiple)) return "max is for an option with \"multiple\": true";
    return check_choices(json_object_get(option, "choices"), detail);
}

static problem check_options(json_t *options) {
    if (!options) return bad(NULL, NULL);
    if (!json_is_object(options)) return bad("options", "options must be an object of lists");
    const char *name;
    json_t *option;
    problem pb = bad(NULL, NULL);
    json_object_foreach(options, name, option) {
        pb.reason = json_is_object(option) ? check_option_object(option, pb.detail) : check_choices(option, pb.detail);
        if (pb.reason) {
            pb.field = "options";
            pb.option = name;
            return pb;
        }
    }
    return pb;
}

/* Checks a product, filling in its currency from the catalog's. */
static problem check_product(json_t *p, const char *default_currency) {
    if (!json_is_object(p)) return bad(NULL, "each product must be an object");
    json_t *sku = json_object_get(p, "sku");
    if (!json_is_string(sku) || json_string_length(sku) == 0 || json_string_length(sku) > 64)
        return bad("sku", "sku must be a non-empty string of at most 64 bytes");
    if (!valid_localized(json_object_get(p, "title"), 1))
        return bad("title", "title must be a string or an object of strings by locale");
    if (!valid_localized(json_object_get(p, "description"), 0))
        return bad("description", "description must be a string or an object of strings by locale");
    json_t *price = json_object_get(p, "price");
    if (!json_is_integer(price) || json_integer_value(price) < 0)
        return bad("price", "price must be a non-negative integer in minor units (450 for 4.50)");
    json_t *currency = json_object_get(p, "currency");
    if (!currency && default_currency) json_object_set_new(p, "currency", json_string(default_currency));
    if (!valid_currency(json_string_value(json_object_get(p, "currency"))))
        return bad("currency", "currency must be an ISO 4217 code such as EUR (on the product or the catalog)");
    json_t *tags = json_object_get(p, "tags");
    if (tags) {
        size_t i;
        json_t *t;
        if (!json_is_array(tags)) return bad("tags", "tags must be a list of strings");
        json_array_foreach(tags, i, t) if (!json_is_string(t)) return bad("tags", "tags must be a list of strings");
    }
    json_t *stock = json_object_get(p, "stock");
    if (stock && (!json_is_integer(stock) || json_integer_value(stock) < 0))
        return bad("stock", "stock must be a non-negative integer (leave it out for unlimited)");
    json_t *image = json_object_get(p, "image");
    if (image && !json_is_string(image)) return bad("image", "image must be a URL string");
    problem pb = bad("aliases", NULL);
    if ((pb.reason = normalize_aliases(p, "", pb.detail))) return pb;
    return check_options(json_object_get(p, "options"));
}

static char *fold_str(const char *s) {
    char *f = pl_text_fold(s, strlen(s));
    return f ? f : pl_strdup("");
}

static void append_folded(char **acc, const char *s) {
    char *f = fold_str(s);
    char *joined = pl_strdupf("%s %s", *acc ? *acc : "", f);
    free(f);
    free(*acc);
    *acc = joined;
}

/* Collects each alias of a normalized aliases object into *list, as
 * collect_localized does titles: an alias names its product as a title does. */
static void collect_aliases(const json_t *aliases, char ***list, size_t *n, char **joined) {
    const char *locale;
    json_t *names, *name;
    size_t i;
    json_object_foreach((json_t *)aliases, locale, names) {
        json_array_foreach(names, i, name) {
            *list = realloc(*list, sizeof **list * (*n + 1));
            if (!*list) abort();
            (*list)[(*n)++] = fold_str(json_string_value(name));
            append_folded(joined, json_string_value(name));
        }
    }
}

/* Collects each localized string of v (string or object) into *list. */
static void collect_localized(const json_t *v, char ***list, size_t *n, char **joined) {
    if (!v) return;
    const char *locale;
    json_t *s;
    if (json_is_string(v)) {
        *list = realloc(*list, sizeof **list * (*n + 1));
        (*list)[(*n)++] = fold_str(json_string_value(v));
        append_folded(joined, json_string_value(v));
        return;
    }
    json_object_foreach((json_t *)v, locale, s) collect_localized(s, list, n, joined);
}

static void build_terms(search_terms *t, const json_t *p) {
    memset(t, 0, sizeof *t);
    t->title_words = pl_strdup("");
    t->description = pl_strdup("");
    collect_localized(json_object_get(p, "title"), &t->titles, &t->ntitles, &t->title_words);
    collect_aliases(json_object_get(p, "aliases"), &t->titles, &t->ntitles, &t->title_words);
    char **descs = NULL;
    size_t ndescs = 0;
    collect_localized(json_object_get(p, "description"), &descs, &ndescs, &t->description);
    for (size_t i = 0; i < ndescs; i++) free(descs[i]);
    free(descs);
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(p, "tags"), i, tag) {
        t->tags = realloc(t->tags, sizeof *t->tags * (t->ntags + 1));
        t->tags[t->ntags++] = fold_str(json_string_value(tag));
    }
}

static void free_terms(search_terms *t) {
    for (size_t i = 0; i < t->ntitles; i++) free(t->titles[i]);
    for (size_t i = 0; i < t->ntags; i++) free(t->tags[i]);
    free(t->titles);
    free(t->tags);
    free(t->title_words);
    free(t->description);
}

/* Where the products came from, for messages: a JSON text (lines found by
 * sku) or a CSV file's rows. */
typedef struct {
    const char *name;
    const char *text;
    const pl_csv_origin *csv;
} source;

static const char *sku_at(const json_t *products, size_t i) {
    return json_string_value(json_object_get(json_array_get(products, i), "sku"));
}

static int product_fail(const source *src, const json_t *products, size_t i, problem pb, char **err) {
    const char *sku = sku_at(products, i);
    if (src->csv) {
        char *place = pl_catalog_csv_where(src->csv, i, pb.field, pb.option);
        if (pb.option) pl_fail(err, "%s: option '%s': %s", place, pb.option, problem_text(&pb));
        else pl_fail(err, "%s: %s", place, problem_text(&pb));
        free(place);
        return PL_ERR;
    }
    size_t same_before = 0;
    for (size_t j = 0; sku && j < i; j++) {
        const char *other = sku_at(products, j);
        same_before += other && strcmp(other, sku) == 0;
    }
    int line = sku ? line_of_sku(src->text, sku, same_before) : 1;
    return pl_fail(err, "%s:%d: product %zu%s%s%s: %s%s%s%s", src->name, line, i + 1, sku ? " (" : "",
                   sku ? sku : "", sku ? ")" : "", pb.option ? "option '" : "", pb.option ? pb.option : "",
                   pb.option ? "': " : "", problem_text(&pb));
}

/* Checks each product, and that no sku appears twice (the skus seen so far
 * in a hash table: a catalog of 40,000 products loads in linear time). */
static int check_products(json_t *products, const char *default_currency, const source *src, char **err) {
    size_t i;
    json_t *p;
    pl_map *seen = pl_map_new();
    int rc = PL_OK;
    json_array_foreach(products, i, p) {
        problem pb = check_product(p, default_currency);
        const char *sku = sku_at(products, i);
        if (!pb.reason && sku && pl_map_get(seen, sku)) pb = bad("sku", "this sku appears twice");
        if (pb.reason) {
            rc = product_fail(src, products, i, pb, err);
            break;
        }
        if (sku) pl_map_put(seen, sku, p);
    }
    pl_map_free(seen);
    return rc;
}

/* Takes products (stolen) as a catalog, or frees them with *err. */
static int adopt(json_t *products, const char *default_currency, const source *src, pl_catalog **out, char **err) {
    if (check_products(products, default_currency, src, err) != PL_OK) {
        json_decref(products);
        return PL_ERR;
    }
    pl_catalog *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->products = products;
    c->count = json_array_size(products);
    c->terms = calloc(c->count ? c->count : 1, sizeof *c->terms);
    for (size_t i = 0; i < c->count; i++) build_terms(&c->terms[i], json_array_get(products, i));
    *out = c;
    return PL_OK;
}

static int parse_json(const char *text, size_t len, const char *name, pl_catalog **out, char **err) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) return pl_fail(err, "%s:%d: %s", name, jerr.line, jerr.text);
    json_t *products = json_is_array(root) ? root : json_object_get(root, "products");
    if (!json_is_array(products)) {
        json_decref(root);
        return pl_fail(err, "%s:1: expected {\"products\": [...]} or a list of products", name);
    }
    json_incref(products);
    /* the text is NUL-terminated for line_of_sku's strstr */
    char *copy = pl_strndup(text, len);
    source src = {name, copy, NULL};
    int rc = adopt(products, json_string_value(json_object_get(root, "currency")), &src, out, err);
    free(copy);
    json_decref(root);
    return rc;
}

static int parse_csv(const char *text, size_t len, const char *name, pl_catalog **out, char **err) {
    pl_csv_origin *origin = NULL;
    json_t *products = pl_catalog_csv_read(text, len, name, &origin, err);
    if (!products) return PL_ERR;
    source src = {name, NULL, origin};
    int rc = adopt(products, NULL, &src, out, err);
    pl_catalog_csv_origin_free(origin);
    return rc;
}

static int is_csv_name(const char *name) {
    size_t n = strlen(name);
    return n >= 4 && strcasecmp(name + n - 4, ".csv") == 0;
}

int pl_catalog_parse(const char *text, size_t len, const char *name, pl_catalog **out,
                     char **err) {
    *out = NULL;
    return is_csv_name(name) ? parse_csv(text, len, name, out, err) : parse_json(text, len, name, out, err);
}

int pl_catalog_load(const char *path, const char *name, pl_catalog **out, char **err) {
    char *text = NULL;
    size_t len = 0;
    if (pl_read_file(path, &text, &len, err) != PL_OK) return PL_ERR;
    int rc = pl_catalog_parse(text, len, name, out, err);
    free(text);
    return rc;
}

pl_catalog *pl_catalog_empty(void) {
    pl_catalog *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->products = json_array();
    c->terms = calloc(1, sizeof *c->terms);
    return c;
}

void pl_catalog_free(pl_catalog *c) {
    if (!c) return;
    for (size_t i = 0; i < c->count; i++) free_terms(&c->terms[i]);
    free(c->terms);
    pl_catalog_lexicon_free(c->lexicon);
    json_decref(c->products);
    free(c);
}

const json_t *pl_catalog_products(const pl_catalog *c) { return c->products; }

int pl_catalog_lexicon_built(const pl_catalog *c) { return c->lexicon != NULL; }

const pl_catalog_lexicon *pl_catalog_lexicon_of(pl_catalog *c) {
    if (!c->lexicon) c->lexicon = pl_catalog_lexicon_build(c->products);
    return c->lexicon;
}

/* True when some whole word of `words` (space separated) starts with w. */
static int has_word_prefix(const char *words, const char *w) {
    for (const char *p = strstr(words, w); p; p = strstr(p + 1, w))
        if (p == words || p[-1] == ' ') return 1;
    return 0;
}

/* Scores the words (space separated, folded) of one message against t. A
 * title in a script without spaces also counts when the message shares a
 * run of at least two characters with it ("ラテ" names "カフェラテ"). */
static int score_product(const search_terms *t, const char *message, int *named) {
    int score = 0;
    *named = 0;
    for (size_t i = 0; i < t->ntitles; i++) {
        if (pl_text_has_phrase(message, t->titles[i])) {
            score += 10 + (int)strlen(t->titles[i]);
            *named = 1;
        } else {
            size_t shared = pl_text_common_cjk_run(message, t->titles[i]);
            if (shared >= 2) {
                score += 3 + (int)shared;
                *named = 1;
            }
        }
    }
    for (size_t i = 0; i < t->ntags; i++)
        if (pl_text_has_phrase(message, t->tags[i])) score += 4;
    char *copy = pl_strdup(message), *save = NULL;
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        size_t wlen = strlen(w);
        if (wlen < 3) continue;
        if (has_word_prefix(t->title_words, w)) {
            score += 3;
            *named = 1;
        }
        else if (pl_text_has_phrase(t->description, w)) score += 1;
    }
    free(copy);
    return score;
}

static int by_score(const void *a, const void *b) {
    const pl_catalog_hit *x = a, *y = b;
    return y->score - x->score;
}

size_t pl_catalog_search(const pl_catalog *c, const char *words, pl_catalog_hit *hits,
                         size_t max) {
    char *message = pl_text_fold(words, strlen(words));
    if (!message || !*message || max == 0) {
        free(message);
        return 0;
    }
    pl_catalog_hit *all = calloc(c->count ? c->count : 1, sizeof *all);
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++) {
        int named = 0;
        int score = score_product(&c->terms[i], message, &named);
        if (score <= 0) continue;
        const json_t *p = json_array_get(c->products, i);
        all[n++] = (pl_catalog_hit){json_string_value(json_object_get(p, "sku")), p, score, named};
    }
    free(message);
    /* Insertion sort: stable, so equal scores keep catalog order; catalogs
     * are small. */
    for (size_t i = 1; i < n; i++) {
        pl_catalog_hit h = all[i];
        size_t j = i;
        while (j > 0 && by_score(&all[j - 1], &h) > 0) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = h;
    }
    size_t count = n < max ? n : max;
    memcpy(hits, all, count * sizeof *hits);
    free(all);
    return count;
}

json_t *pl_catalog_stock(const json_t *products) {
    json_t *stock = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(products, i, p) {
        const char *sku = json_string_value(json_object_get(p, "sku"));
        json_t *n = json_object_get(p, "stock");
        if (json_is_integer(n)) json_object_set(stock, sku, n);
        const char *name;
        json_t *option;
        json_object_foreach(json_object_get(p, "options"), name, option) {
            json_t *choices = json_is_array(option) ? option : json_object_get(option, "choices");
            size_t j;
            json_t *choice;
            json_array_foreach(choices, j, choice) {
                json_t *cn = json_object_get(choice, "stock");
                if (!json_is_integer(cn)) continue;
                char *key = pl_strdupf("%s/%s=%s", sku, name, json_string_value(json_object_get(choice, "value")));
                json_object_set(stock, key, cn);
                free(key);
            }
        }
    }
    return stock;
}
