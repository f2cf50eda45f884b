/* catalog_csv: a CSV catalog read into JSON products; see catalog_csv.h.
 *
 * Debian's libcsv has no pkg-config file and is unmaintained upstream, so
 * this is a small reader of its own (RFC 4180, plus what spreadsheets do:
 * a UTF-8 byte order mark, ';' or tab as the separator, blank rows).
 *
 * Columns (the header names them; any order; a header starting with '#'
 * or left empty is a note column and ignored):
 *   sku, currency, stock (empty = unlimited), image
 *   price (minor units: 12900) or price_major (the currency's units: 129.00,
 *       with at most its ISO 4217 minor digits), never both: the header
 *       says once for the whole file which one the prices (and the
 *       options' price changes) are written in
 *   title, title:<locale>, description, description:<locale>
 *       the plain column is the text for every locale without its own
 *       column: {"*": plain, "ja": ...} in JSON
 *   tags                    coffee | hot
 *   aliases, aliases:<locale>
 *                           capu | cappu   (other names of the product;
 *       the plain column is for every locale: {"*": [...], "es": [...]})
 *   option:<name>           [flags] choice | choice ...
 *   option:<name>:<locale>  value = title | value = title ...
 *   options                 name: [flags] choice | ...; name: ...
 *   options:<locale>        name: value = title | ...; name: ...
 *   option_aliases:<name>, option_aliases:<name>:<locale>
 *                           value = alias | alias; value = alias ...
 *       other names of the option's choices: oat = oat milk | avena; soy = soja
 * where a choice is `value [= Title] [+N | -N] [stock N]` and the flags are
 * `multiple`, `max N` (a multiple option) and `required`. A list of aliases
 * is written as tags are, with '|' between them, whether of a product or of
 * a choice; the choices of an option_aliases cell are apart by ';', as the
 * options of an options cell are. The aliases of an option given in the
 * options column are named by option_aliases:<name> all the same. */
#define _GNU_SOURCE
#include "catalog_csv.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/money.h"
#include "base/text.h"
#include "aliases.h"

typedef enum {
    COL_NOTE,
    COL_SKU,
    COL_TITLE,
    COL_DESCRIPTION,
    COL_PRICE,       /* minor units */
    COL_PRICE_MAJOR, /* the currency's units, 129.00 */
    COL_CURRENCY,
    COL_TAGS,
    COL_STOCK,
    COL_IMAGE,
    COL_OPTIONS, /* every option of the product in one cell */
    COL_OPTION,  /* one option */
    COL_ALIASES,
    COL_OPTION_ALIASES, /* the aliases of one option's choices */
} col_kind;

typedef struct {
    col_kind kind;
    char *header; /* as written, trimmed */
    char *option; /* COL_OPTION, COL_OPTION_ALIASES: the option's name */
    char *locale; /* a localized column: its locale */
} column;

struct pl_csv_origin {
    char *name;
    column *cols;
    size_t ncols;
    int *lines; /* the line each product starts on */
    size_t nproducts;
    int major; /* prices in the currency's units: a price_major column */
};

static const char known_columns[] =
    "sku, title, title:<locale>, description, description:<locale>, price (or price_major), currency, tags, "
    "aliases, aliases:<locale>, stock, image, options, options:<locale>, option:<name>, option:<name>:<locale>, "
    "option_aliases:<name>, option_aliases:<name>:<locale>";

/* --- strings ------------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t n, cap;
} buf;

static void buf_put(buf *b, char c) {
    if (b->n + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    b->s[b->n++] = c;
    b->s[b->n] = '\0';
}

/* A new copy of s[0..n) without the spaces around it. */
static char *trimmed(const char *s, size_t n) {
    while (n > 0 && isspace((unsigned char)*s)) s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    return pl_strndup(s, n);
}

/* "A", ..., "Z", "AA" ...: the column's letter in a spreadsheet. */
static void column_letter(size_t i, char out[8]) {
    char rev[8];
    size_t n = 0;
    for (i++; i > 0 && n < 7; i = (i - 1) / 26) rev[n++] = (char)('A' + (i - 1) % 26);
    for (size_t k = 0; k < n; k++) out[k] = rev[n - 1 - k];
    out[n] = '\0';
}

/* "name:line: column C (header)", or "name:line: column C" past the header. */
static char *where(const pl_csv_origin *o, int line, size_t col) {
    char letter[8];
    column_letter(col, letter);
    if (col < o->ncols && o->cols[col].header[0])
        return pl_strdupf("%s:%d: column %s (%s)", o->name, line, letter, o->cols[col].header);
    return pl_strdupf("%s:%d: column %s", o->name, line, letter);
}

/* The place of a cell, for its errors. */
typedef struct {
    const pl_csv_origin *o;
    int line;
    size_t col;
    const char *currency; /* the row's, when its prices are in major units */
} spot;

static int fail_at(const spot *at, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(const spot *at, char **err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *why = pl_vstrdupf(fmt, ap);
    va_end(ap);
    char *place = where(at->o, at->line, at->col);
    pl_fail(err, "%s: %s", place, why);
    free(place);
    free(why);
    return PL_ERR;
}

/* --- records (RFC 4180) -------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    int line; /* the line p is on */
    char sep;
} reader;

typedef struct {
    char **cells; /* trimmed */
    size_t n, cap;
    int line; /* the line the record starts on */
} record;

static void record_clear(record *r) {
    for (size_t i = 0; i < r->n; i++) free(r->cells[i]);
    r->n = 0;
}

static void record_push(record *r, char *cell) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->cells = realloc(r->cells, sizeof *r->cells * r->cap);
        if (!r->cells) abort();
    }
    r->cells[r->n++] = cell;
}

/* Spaces and tabs around a quoted cell, unless they separate cells. */
static int is_pad(const reader *r) { return r->p < r->end && (*r->p == ' ' || *r->p == '\t') && *r->p != r->sep; }

static int at_field_end(const reader *r) {
    return r->p == r->end || *r->p == r->sep || *r->p == '\n' || *r->p == '\r';
}

/* Reads a quoted field's content after its opening quote into b. */
static int read_quoted(reader *r, buf *b, const spot *at, char **err) {
    for (;;) {
        if (r->p == r->end)
            return fail_at(at, err, "a quoted cell is never closed (a \" is missing)");
        char c = *r->p++;
        if (c == '"') {
            if (r->p < r->end && *r->p == '"') {
                r->p++;
                buf_put(b, '"');
                continue;
            }
            while (is_pad(r)) r->p++;
            if (!at_field_end(r))
                return fail_at(at, err, "text after a closing quote (write a quote inside a quoted cell as \"\")");
            return PL_OK;
        }
        if (c == '\n') r->line++;
        buf_put(b, c);
    }
}

/* Reads one field; leaves r->p at its separator or line end. */
static int read_field(reader *r, record *rec, pl_csv_origin *o, char **err) {
    buf b = {0};
    buf_put(&b, '\0'); /* b.s is a string even when the cell is empty */
    b.n = 0;
    const char *start = r->p;
    while (is_pad(r)) r->p++;
    if (r->p < r->end && *r->p == '"') {
        r->p++;
        spot at = {o, r->line, rec->n, NULL};
        if (read_quoted(r, &b, &at, err) != PL_OK) {
            free(b.s);
            return PL_ERR;
        }
    } else {
        r->p = start;
        while (!at_field_end(r)) buf_put(&b, *r->p++);
    }
    if (!pl_text_is_utf8(b.s, b.n)) {
        free(b.s);
        spot at = {o, r->line, rec->n, NULL};
        return fail_at(&at, err, "the text is not UTF-8 (save the file as \"CSV UTF-8\")");
    }
    record_push(rec, trimmed(b.s, b.n));
    free(b.s);
    return PL_OK;
}

/* Reads the next record into rec: 1, 0 at the end of the text, or PL_ERR. */
static int read_record(reader *r, record *rec, pl_csv_origin *o, char **err) {
    record_clear(rec);
    if (r->p >= r->end) return 0;
    rec->line = r->line;
    for (;;) {
        if (read_field(r, rec, o, err) != PL_OK) return PL_ERR;
        if (r->p < r->end && *r->p == r->sep) {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == '\r') r->p++;
        if (r->p < r->end && *r->p == '\n') r->p++;
        r->line++;
        return 1;
    }
}

static int record_blank(const record *rec) {
    for (size_t i = 0; i < rec->n; i++)
        if (rec->cells[i][0]) return 0;
    return 1;
}

/* Spreadsheets in some countries save ';'- or tab-separated "CSV": the
 * header's first line says which (a header name holds none of them). */
static char detect_separator(const char *p, const char *end) {
    size_t commas = 0, semis = 0, tabs = 0;
    int quoted = 0;
    for (; p < end && (quoted || (*p != '\n' && *p != '\r')); p++) {
        if (*p == '"') quoted = !quoted;
        if (quoted) continue;
        commas += *p == ',';
        semis += *p == ';';
        tabs += *p == '\t';
    }
    if (semis > commas && semis >= tabs) return ';';
    if (tabs > commas && tabs > semis) return '\t';
    return ',';
}

/* --- the header ------------------------------------------------------------------ */

static const struct {
    const char *name;
    col_kind kind;
    int localized; /* may carry :<locale> */
} kinds[] = {
    {"sku", COL_SKU, 0},           {"title", COL_TITLE, 1},     {"description", COL_DESCRIPTION, 1},
    {"price", COL_PRICE, 0},       {"price_major", COL_PRICE_MAJOR, 0},
    {"currency", COL_CURRENCY, 0}, {"tags", COL_TAGS, 0},
    {"stock", COL_STOCK, 0},       {"image", COL_IMAGE, 0},     {"options", COL_OPTIONS, 1},
    {"aliases", COL_ALIASES, 1},
};

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (isspace((unsigned char)*s) || strchr(":;|=[],", *s)) return 0;
    return 1;
}

/* Fills col from its header text; PL_ERR names what is wrong. */
static int parse_column(column *col, const char *header, const spot *at, char **err) {
    col->header = pl_strdup(header);
    if (!header[0] || header[0] == '#') return PL_OK; /* a note column */
    const char *colon = strchr(header, ':');
    size_t klen = colon ? (size_t)(colon - header) : strlen(header);
    char *kind = trimmed(header, klen);
    for (char *k = kind; *k; k++) *k = (char)tolower((unsigned char)*k);
    const char *rest = colon ? colon + 1 : NULL;
    int rc = PL_OK;
    int aliases = strcmp(kind, "option_aliases") == 0;
    if ((strcmp(kind, "option") == 0 || aliases) && rest) {
        const char *second = strchr(rest, ':');
        col->kind = aliases ? COL_OPTION_ALIASES : COL_OPTION;
        col->option = second ? trimmed(rest, (size_t)(second - rest)) : trimmed(rest, strlen(rest));
        if (second) col->locale = trimmed(second + 1, strlen(second + 1));
        if (!valid_name(col->option) || (col->locale && !valid_name(col->locale)))
            rc = fail_at(at, err, "write %s:<name> or %s:<name>:<locale>, as in %s:size or %s:size:ja", kind, kind,
                         kind, kind);
        else if (aliases && col->locale && !pl_alias_locale_valid(col->locale))
            rc = fail_at(at, err, "'%s' is not a locale code such as es or pt-BR", col->locale);
        free(kind);
        return rc;
    }
    size_t i = 0;
    while (i < sizeof kinds / sizeof kinds[0] && strcmp(kinds[i].name, kind) != 0) i++;
    if (i == sizeof kinds / sizeof kinds[0])
        rc = fail_at(at, err, "'%s' is not a column parley knows (%s); the first row must name the columns",
                     header, known_columns);
    else if (rest && !kinds[i].localized)
        rc = fail_at(at, err, "the %s column has no language versions", kinds[i].name);
    else {
        col->kind = kinds[i].kind;
        if (rest) col->locale = trimmed(rest, strlen(rest));
        if (rest && !valid_name(col->locale))
            rc = fail_at(at, err, "write %s:<locale>, as in %s:ja", kinds[i].name, kinds[i].name);
        else if (rest && col->kind == COL_ALIASES && !pl_alias_locale_valid(col->locale))
            rc = fail_at(at, err, "'%s' is not a locale code such as es or pt-BR", col->locale);
    }
    free(kind);
    return rc;
}

static int same_column(const column *a, const column *b) {
    if (a->kind == COL_NOTE || a->kind != b->kind) return 0;
    if ((a->option == NULL) != (b->option == NULL) || (a->option && strcmp(a->option, b->option) != 0)) return 0;
    return (a->locale == NULL) == (b->locale == NULL) && (!a->locale || strcmp(a->locale, b->locale) == 0);
}

static int has_kind(const pl_csv_origin *o, col_kind kind) {
    for (size_t i = 0; i < o->ncols; i++)
        if (o->cols[i].kind == kind) return 1;
    return 0;
}

/* One price column, which says the unit of every price in the file. */
static int price_columns(pl_csv_origin *o, int line, char **err) {
    size_t minor = o->ncols, major = o->ncols;
    for (size_t i = 0; i < o->ncols; i++) {
        if (o->cols[i].kind == COL_PRICE) minor = i;
        if (o->cols[i].kind == COL_PRICE_MAJOR) major = i;
    }
    if (minor == o->ncols && major == o->ncols)
        return pl_fail(err,
                       "%s:%d: the header has no price column: price (in minor units, 12900 for 129.00) or "
                       "price_major (in the currency's units, 129.00) (the columns are: %s)",
                       o->name, line, known_columns);
    if (minor < o->ncols && major < o->ncols) {
        char letter[8];
        column_letter(minor < major ? minor : major, letter);
        spot at = {o, line, minor > major ? minor : major, NULL};
        return fail_at(&at, err,
                       "prices are in one column, and column %s has them: price is in minor units (12900 for "
                       "129.00), price_major in the currency's units (129.00); keep one of the two",
                       letter);
    }
    o->major = major < o->ncols;
    return PL_OK;
}

static int parse_header(pl_csv_origin *o, const record *rec, char **err) {
    o->cols = calloc(rec->n ? rec->n : 1, sizeof *o->cols);
    if (!o->cols) abort();
    for (size_t i = 0; i < rec->n; i++) {
        spot at = {o, rec->line, i, NULL};
        o->ncols = i + 1;
        if (parse_column(&o->cols[i], rec->cells[i], &at, err) != PL_OK) return PL_ERR;
        for (size_t j = 0; j < i; j++) {
            char letter[8];
            column_letter(j, letter);
            if (same_column(&o->cols[j], &o->cols[i]))
                return fail_at(&at, err, "this column is already column %s", letter);
        }
    }
    static const struct {
        col_kind kind;
        const char *name;
    } needed[] = {{COL_SKU, "sku"}, {COL_TITLE, "title (or title:<locale>)"}, {COL_CURRENCY, "currency"}};
    for (size_t k = 0; k < sizeof needed / sizeof needed[0]; k++)
        if (!has_kind(o, needed[k].kind))
            return pl_fail(err, "%s:%d: the header has no %s column (the columns are: %s)", o->name, rec->line,
                           needed[k].name, known_columns);
    return price_columns(o, rec->line, err);
}

/* --- cells ----------------------------------------------------------------------- */

static const char *cell(const record *rec, size_t col) { return col < rec->n ? rec->cells[col] : ""; }

/* A whole number as a JSON integer; anything else stays text, for the
 * validator to say what the field must be. */
static json_t *number_or_text(const char *s) {
    const char *digits = s[0] == '-' ? s + 1 : s;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (isdigit((unsigned char)digits[0]) && *end == '\0' && errno == 0) return json_integer(v);
    return json_string(s);
}

/* --- prices in the currency's units ------------------------------------------------ */

typedef enum { AMOUNT_OK, AMOUNT_NOT_A_NUMBER, AMOUNT_TOO_PRECISE, AMOUNT_TOO_LARGE, AMOUNT_AMBIGUOUS } amount_reading;

/* Whether "<whole><mark><three digits>" may be a number written with a
 * thousands separator ("1,000", "12.500"): a group of one to three digits
 * that does not start with 0, then one separator. */
static int may_be_thousands(const char *whole, size_t nwhole, size_t decimals) {
    return decimals == 3 && nwhole >= 1 && nwhole <= 3 && whole[0] != '0';
}

/* An unsigned amount in major units, "129.00" (or "129", or "129,00" as
 * spreadsheets in some countries write it) as minor units of a currency with
 * `digits` minor digits. No price is ever guessed: every decimal must be one
 * of the currency's ("450.00" is no amount of JPY, "129.000" none of EUR),
 * and a mark followed by three digits that could be a thousands separator is
 * AMOUNT_AMBIGUOUS unless it can only be a decimal point ("1.250" in KWD,
 * which has three decimals; "1,250" stays ambiguous there, as a comma is as
 * often a thousands separator). */
static amount_reading major_units(const char *s, size_t n, int digits, long long *out) {
    long long v = 0;
    size_t i = 0;
    if (n == 0 || !isdigit((unsigned char)s[0])) return AMOUNT_NOT_A_NUMBER;
    for (; i < n && isdigit((unsigned char)s[i]); i++) {
        if (i >= 12) return AMOUNT_TOO_LARGE; /* a trillion, in any currency */
        v = v * 10 + (s[i] - '0');
    }
    size_t nwhole = i, decimals = 0;
    if (i < n && (s[i] == '.' || s[i] == ',')) {
        char mark = s[i];
        size_t first = ++i;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i != n || i == first) return AMOUNT_NOT_A_NUMBER; /* "12.", "1,299.00" */
        decimals = i - first;
        if (may_be_thousands(s, nwhole, decimals) && (digits != 3 || mark == ',')) return AMOUNT_AMBIGUOUS;
        if (decimals > (size_t)digits) return AMOUNT_TOO_PRECISE;
        for (size_t k = first; k < n; k++) v = v * 10 + (s[k] - '0');
    }
    if (i != n) return AMOUNT_NOT_A_NUMBER;
    for (; decimals < (size_t)digits; decimals++) v *= 10;
    *out = v;
    return AMOUNT_OK;
}

/* 129 written with a currency's digits: "129.00", "129", "129.000". */
static void example_price(int digits, const char *sign, char out[24]) {
    snprintf(out, 24, "%s129%s%.*s", sign, digits ? "." : "", digits, "000000");
}

/* The words for an ambiguous `text` ("1,000", "+1.500"): the number it is
 * without the separator, and the one with a decimal point, when the
 * currency's digits can write it ("1.00" EUR for "1.000", "1.250" KWD for
 * "1,250"). */
static int ambiguity_failure(const spot *at, char **err, const char *text) {
    int digits = pl_money_decimals(at->currency);
    const char *mark = strpbrk(text, ".,");
    size_t whole = (size_t)(mark - text);
    char thousands[32], decimal[32];
    snprintf(thousands, sizeof thousands, "%.*s%s", (int)whole, text, mark + 1);
    /* the decimal reading drops only zeros past the currency's digits */
    size_t frac = strlen(mark + 1), kept = (size_t)digits < frac ? (size_t)digits : frac;
    int decimal_ok = digits > 0 && strspn(mark + 1 + kept, "0") == frac - kept;
    snprintf(decimal, sizeof decimal, "%.*s.%.*s", (int)whole, text, (int)kept, mark + 1);
    if (!decimal_ok)
        return fail_at(at, err, "'%s' is ambiguous: is '%c' a thousands separator? Write %s (no thousands "
                       "separator; %s has %s)", text, *mark, thousands, at->currency,
                       digits == 0 ? "no decimals" : digits == 2 ? "2 decimals" : "other decimals");
    return fail_at(at, err, "'%s' is ambiguous: is '%c' a thousands separator or a decimal %s? Write %s (no "
                   "thousands separator) or %s (%s has %d decimals, after a decimal point)", text, *mark,
                   *mark == ',' ? "comma" : "point", thousands, decimal, at->currency, digits);
}

/* Says what is wrong with `text`, a price (what = "a price") or a price
 * change ("a price change", written with its sign) in the row's currency. */
static int amount_failure(const spot *at, char **err, const char *what, const char *text, amount_reading r) {
    int digits = pl_money_decimals(at->currency);
    char example[24];
    example_price(digits, strcmp(what, "a price") == 0 ? "" : "+", example);
    if (r == AMOUNT_TOO_LARGE) return fail_at(at, err, "'%s': %s this large is no price", text, what);
    if (r == AMOUNT_AMBIGUOUS) return ambiguity_failure(at, err, text);
    if (r == AMOUNT_TOO_PRECISE && digits == 0)
        return fail_at(at, err, "'%s': %s in %s has no decimals (%s has no minor unit), as in %s", text, what,
                       at->currency, at->currency, example);
    if (r == AMOUNT_TOO_PRECISE)
        return fail_at(at, err, "'%s': %s in %s has at most %d decimals, as in %s", text, what, at->currency, digits,
                       example);
    return fail_at(at, err, "'%s' is not %s in %s: write digits and at most one decimal point, as in %s (no "
                   "currency sign, no thousands separator)", text, what, at->currency, example);
}

/* A price_major cell as minor units; PL_ERR names what is wrong. */
static int major_price(const char *text, const spot *at, long long *out, char **err) {
    char example[24];
    example_price(pl_money_decimals(at->currency), "", example);
    if (!text[0]) return fail_at(at, err, "the price is missing: write it in %s, as in %s", at->currency, example);
    if (text[0] == '-') return fail_at(at, err, "'%s': a price is never negative", text);
    amount_reading r = major_units(text, strlen(text), pl_money_decimals(at->currency), out);
    return r == AMOUNT_OK ? PL_OK : amount_failure(at, err, "a price", text, r);
}

/* title / description: a string, or {"*": plain, "<locale>": ...} when the
 * row has language versions; NULL when every such cell is empty. */
static json_t *localized(const pl_csv_origin *o, const record *rec, col_kind kind) {
    const char *plain = NULL;
    json_t *by_locale = NULL;
    for (size_t i = 0; i < o->ncols; i++) {
        const char *text = cell(rec, i);
        if (o->cols[i].kind != kind || !text[0]) continue;
        if (!o->cols[i].locale) {
            plain = text;
            continue;
        }
        if (!by_locale) by_locale = json_object();
        json_object_set_new(by_locale, o->cols[i].locale, json_string(text));
    }
    if (!by_locale) return plain ? json_string(plain) : NULL;
    if (plain) json_object_set_new(by_locale, "*", json_string(plain));
    return by_locale;
}

/* "coffee | hot" -> ["coffee", "hot"]; NULL when there are none. */
static json_t *tag_list(const char *text) {
    json_t *tags = NULL;
    for (const char *p = text; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        char *tag = trimmed(p, n);
        if (tag[0]) {
            if (!tags) tags = json_array();
            json_array_append_new(tags, json_string(tag));
        }
        free(tag);
        p += n + (bar ? 1 : 0);
    }
    return tags;
}

/* "capu | cappu" -> ["capu", "cappu"] (new; empty pieces are skipped, as
 * between tags), or NULL with *err when an alias breaks a rule of
 * aliases.h; `whose` says whose aliases they are in the message. */
static json_t *alias_list(const char *text, const char *whose, const spot *at, char **err) {
    json_t *list = json_array();
    for (const char *p = text; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        char *alias = trimmed(p, n);
        char detail[80];
        const char *problem = alias[0] ? pl_alias_problem(alias, strlen(alias), detail, sizeof detail) : NULL;
        if (problem) fail_at(at, err, "%salias '%.40s%s' %s", whose, alias, strlen(alias) > 40 ? "..." : "", problem);
        else if (alias[0]) json_array_append_new(list, json_string(alias));
        free(alias);
        if (problem) {
            json_decref(list);
            return NULL;
        }
        p += n + (bar ? 1 : 0);
    }
    if (json_array_size(list) > PL_ALIASES_PER_LOCALE) {
        fail_at(at, err, "%s%zu aliases; there are at most %d in a language", whose, json_array_size(list),
                PL_ALIASES_PER_LOCALE);
        json_decref(list);
        return NULL;
    }
    return list;
}

/* The product's aliases, {"*": [...], "<locale>": [...]} from its aliases
 * columns; NULL in *out when every such cell is empty. */
static int row_aliases(const pl_csv_origin *o, const record *rec, json_t **out, char **err) {
    json_t *by_locale = NULL;
    for (size_t i = 0; i < o->ncols; i++) {
        const char *text = cell(rec, i);
        if (o->cols[i].kind != COL_ALIASES || !text[0]) continue;
        spot at = {o, rec->line, i, NULL};
        json_t *list = alias_list(text, "", &at, err);
        if (!list) {
            json_decref(by_locale);
            return PL_ERR;
        }
        if (!by_locale) by_locale = json_object();
        json_object_set_new(by_locale, o->cols[i].locale ? o->cols[i].locale : "*", list);
    }
    *out = by_locale;
    return PL_OK;
}

/* --- options ----------------------------------------------------------------------- */

/* The words of a choice after its value, as [start, end) spans. */
typedef struct {
    const char *start[32], *end[32];
    size_t n;
    int overflow; /* more than 32 words */
} words;

static void split_words(const char *s, words *w) {
    w->n = 0;
    w->overflow = 0;
    while (*s) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) break;
        if (w->n == 32) {
            w->overflow = 1;
            break;
        }
        w->start[w->n] = s;
        while (*s && !isspace((unsigned char)*s)) s++;
        w->end[w->n++] = s;
    }
}

static int word_is(const words *w, size_t i, const char *s) {
    size_t n = (size_t)(w->end[i] - w->start[i]);
    return n == strlen(s) && strncasecmp(w->start[i], s, n) == 0;
}

/* The word as a whole number (optionally signed when `signed_ok`); -1 when
 * it is none, -2 when it looks like a decimal ("+0.50"). */
static int word_number(const words *w, size_t i, int signed_ok, long long *out) {
    const char *s = w->start[i], *e = w->end[i];
    if (signed_ok && (*s == '+' || *s == '-')) s++;
    else if (signed_ok) return -1;
    if (s == e || !isdigit((unsigned char)*s)) return -1;
    const char *d = s;
    while (d < e && isdigit((unsigned char)*d)) d++;
    if (d != e) return (*d == '.' || *d == ',') ? -2 : -1;
    if (e - s > 15) return -1;
    *out = strtoll(s, NULL, 10) * (*w->start[i] == '-' ? -1 : 1);
    return 0;
}

/* The word as a signed price change in the row's major units ("+0.90"):
 * PL_OK and *out in minor units, 1 when it is no signed number, PL_ERR
 * when it is a wrong one. */
static int major_change(const words *w, size_t i, const spot *at, long long *out, char **err) {
    const char *s = w->start[i];
    size_t n = (size_t)(w->end[i] - s);
    if (n < 2 || (*s != '+' && *s != '-') || !isdigit((unsigned char)s[1])) return 1;
    amount_reading r = major_units(s + 1, n - 1, pl_money_decimals(at->currency), out);
    if (r != AMOUNT_OK) {
        char *text = pl_strndup(s, n);
        amount_failure(at, err, "a price change", text, r);
        free(text);
        return PL_ERR;
    }
    if (*s == '-') *out = -*out;
    return PL_OK;
}

/* Peels `+N` / `-N` and `stock N` off the end of the words into choice;
 * returns how many words are left (the title), or PL_ERR. */
static int peel_attributes(const words *w, json_t *choice, const spot *at, char **err) {
    size_t n = w->n;
    while (n > 0) {
        long long v = 0;
        int num;
        if (at->o->major) {
            int rc = major_change(w, n - 1, at, &v, err);
            if (rc == PL_ERR) return PL_ERR;
            num = rc == PL_OK ? 0 : -1; /* as word_number says it */
        } else {
            num = word_number(w, n - 1, 1, &v);
        }
        if (num == -2)
            return fail_at(at, err,
                           "'%.*s': a price change is whole minor units (+50 for 0.50); to write +0.50, give the "
                           "prices in a price_major column",
                           (int)(w->end[n - 1] - w->start[n - 1]), w->start[n - 1]);
        if (num == 0) {
            if (json_object_get(choice, "price")) return fail_at(at, err, "a choice has one price change");
            json_object_set_new(choice, "price", json_integer(v));
            n--;
            continue;
        }
        if (n >= 2 && word_is(w, n - 2, "stock")) {
            if (word_number(w, n - 1, 0, &v) != 0)
                return fail_at(at, err, "'stock' is followed by the units in stock, a whole number");
            json_object_set_new(choice, "stock", json_integer(v));
            n -= 2;
            continue;
        }
        if (word_is(w, n - 1, "stock")) return fail_at(at, err, "'stock' is followed by the units in stock");
        break;
    }
    return (int)n;
}

/* A price change the title would otherwise swallow: a signed word with a
 * digit that is no price change ("+.50", "+0.5.0") or a lone sign before a
 * number ("+ 0.50"). PL_ERR names it and says how to write it; the title's
 * words are [0, n). */
static int stray_price_change(const words *w, size_t n, const spot *at, char **err) {
    for (size_t i = 0; i < n; i++) {
        const char *s = w->start[i], *e = w->end[i];
        if (*s != '+' && *s != '-') continue;
        int lone = e - s == 1;
        const char *next = lone && i + 1 < n ? w->start[i + 1] : NULL;
        int number_after = next && (isdigit((unsigned char)*next) || *next == '.' || *next == ',');
        int has_digit = 0;
        for (const char *p = s; p < e; p++) has_digit |= isdigit((unsigned char)*p);
        if (!has_digit && !number_after) continue;
        const char *end = number_after ? w->end[i + 1] : e;
        /* the word as it should be, when that is plain, else a model */
        const char *digits = number_after ? next : s + 1;
        char example[24];
        snprintf(example, sizeof example, "%c%s%.*s", *s, *digits == '.' ? "0" : "", (int)(end - digits), digits);
        long long unused;
        if (!at->o->major) snprintf(example, sizeof example, "+50");
        else if (major_units(example + 1, strlen(example + 1), pl_money_decimals(at->currency), &unused) != AMOUNT_OK)
            example_price(pl_money_decimals(at->currency), "+", example);
        return fail_at(at, err, "'%.*s' is no price change: write it with its sign, digits and no space, after "
                       "the title, as in %s (%s)", (int)(end - s), s, example,
                       at->o->major ? at->currency : "in minor units");
    }
    return PL_OK;
}

/* `value [= Title] [+N | -N] [stock N]` -> {"value", "title"?, "price", "stock"?} */
static json_t *parse_choice(const char *text, const spot *at, char **err) {
    const char *eq = strchr(text, '=');
    const char *value_end = text;
    while (*value_end && !isspace((unsigned char)*value_end) && *value_end != '=') value_end++;
    char *value = eq ? trimmed(text, (size_t)(eq - text)) : trimmed(text, (size_t)(value_end - text));
    const char *rest = eq ? eq + 1 : value_end;
    json_t *choice = NULL;
    if (!valid_name(value) || strchr(value, '+')) {
        fail_at(at, err, "'%s' is not a choice: write value [= Title] [+price] [stock N], as in oat = Oat milk +40",
                text);
        goto done;
    }
    choice = json_pack("{s:s}", "value", value);
    words w;
    split_words(rest, &w);
    if (w.overflow) {
        fail_at(at, err, "'%.40s...': a choice's title has at most 32 words", text);
        goto fail;
    }
    int left = peel_attributes(&w, choice, at, err);
    if (left < 0) goto fail;
    if (stray_price_change(&w, (size_t)left, at, err) != PL_OK) goto fail;
    if (left > 0 && !eq && isdigit((unsigned char)*w.start[0])) {
        if (at->o->major) fail_at(at, err, "'%s': a price change has its sign, in %s (+0.50, -0.20)", text, at->currency);
        else fail_at(at, err, "'%s': a price change has its sign, in minor units (+50, -20)", text);
        goto fail;
    }
    if (left > 0 && !eq) {
        fail_at(at, err, "'%s': write %s = %.*s to give the choice a title", text, value,
                (int)(w.end[left - 1] - w.start[0]), w.start[0]);
        goto fail;
    }
    if (left > 0) json_object_set_new(choice, "title", json_stringn(w.start[0], (size_t)(w.end[left - 1] - w.start[0])));
    else if (eq) {
        fail_at(at, err, "'%s': the title after = is empty", text);
        goto fail;
    }
    if (!json_object_get(choice, "price")) json_object_set_new(choice, "price", json_integer(0));
    goto done;
fail:
    json_decref(choice);
    choice = NULL;
done:
    free(value);
    return choice;
}

typedef struct {
    int multiple, required;
    long long max;
} option_flags;

/* "[multiple, max 3, required]" at the start of text; *rest after it. */
static int parse_flags(const char *text, option_flags *f, const char **rest, const spot *at, char **err) {
    *f = (option_flags){0};
    while (isspace((unsigned char)*text)) text++;
    *rest = text;
    if (*text != '[') return PL_OK;
    const char *close = strchr(text, ']');
    if (!close) return fail_at(at, err, "'[' opens the option's flags but no ']' closes them");
    *rest = close + 1;
    for (const char *p = text + 1; p < close;) {
        const char *comma = memchr(p, ',', (size_t)(close - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(close - p);
        char *flag = trimmed(p, n);
        words w;
        split_words(flag, &w);
        long long max = 0;
        int rc = PL_OK;
        if (w.n == 1 && word_is(&w, 0, "multiple")) f->multiple = 1;
        else if (w.n == 1 && word_is(&w, 0, "required")) f->required = 1;
        else if (w.n == 2 && word_is(&w, 0, "max") && word_number(&w, 1, 0, &max) == 0 && max >= 1)
            f->multiple = 1, f->max = max;
        else if (w.n > 0)
            rc = fail_at(at, err, "'%s' is not an option flag (multiple, max N, required)", flag);
        free(flag);
        if (rc != PL_OK) return rc;
        p += n + (comma ? 1 : 0);
    }
    return PL_OK;
}

/* `[flags] choice | choice ...` -> a list of choices, or {"choices": [...],
 * "multiple", "max", "required"} when there are flags. */
static json_t *parse_option(const char *text, const spot *at, char **err) {
    option_flags f;
    const char *p;
    if (parse_flags(text, &f, &p, at, err) != PL_OK) return NULL;
    json_t *choices = json_array();
    while (1) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        char *piece = trimmed(p, n);
        json_t *choice = piece[0] ? parse_choice(piece, at, err) : NULL;
        if (!piece[0]) fail_at(at, err, "an empty choice (two | in a row, or one at an end?)");
        free(piece);
        if (!choice) {
            json_decref(choices);
            return NULL;
        }
        json_array_append_new(choices, choice);
        if (!bar) break;
        p = bar + 1;
    }
    if (!f.multiple && !f.required) return choices;
    json_t *option = json_pack("{s:o}", "choices", choices);
    if (f.multiple) json_object_set_new(option, "multiple", json_true());
    if (f.max) json_object_set_new(option, "max", json_integer(f.max));
    if (f.required) json_object_set_new(option, "required", json_true());
    return option;
}

static json_t *choices_of(json_t *option) {
    return json_is_array(option) ? option : json_object_get(option, "choices");
}

/* Adds option `name` to options, refusing a name given twice. */
static int add_option(json_t *options, const char *name, const char *text, const spot *at, char **err) {
    if (json_object_get(options, name))
        return fail_at(at, err, "the option '%s' is given twice in this row", name);
    json_t *option = parse_option(text, at, err);
    if (!option) return PL_ERR;
    json_object_set_new(options, name, option);
    return PL_OK;
}

/* Splits "name: rest; name: rest" and calls fn(name, rest) for each. */
typedef int (*named_fn)(json_t *options, const char *name, const char *text, const char *locale,
                        const spot *at, char **err);

static int each_named(json_t *options, const char *text, const char *locale, named_fn fn, const spot *at,
                      char **err) {
    for (const char *p = text; *p;) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        char *part = trimmed(p, n);
        int rc = PL_OK;
        if (part[0]) {
            char *colon = strchr(part, ':');
            char *name = colon ? trimmed(part, (size_t)(colon - part)) : NULL;
            if (!name || !valid_name(name))
                rc = fail_at(at, err, "'%s': write name: choices, as in size: small | large +90", part);
            else
                rc = fn(options, name, colon + 1, locale, at, err);
            free(name);
        }
        free(part);
        if (rc != PL_OK) return rc;
        p += n + (semi ? 1 : 0);
    }
    return PL_OK;
}

static int add_named_option(json_t *options, const char *name, const char *text, const char *locale,
                            const spot *at, char **err) {
    (void)locale;
    return add_option(options, name, text, at, err);
}

/* Sets the choice's title in `locale`: a plain title becomes the "*" one. */
static void set_choice_title(json_t *choice, const char *locale, const char *title) {
    json_t *old = json_object_get(choice, "title");
    json_t *by_locale = json_is_object(old) ? json_incref(old) : json_object();
    if (json_is_string(old)) json_object_set(by_locale, "*", old);
    json_object_set_new(by_locale, locale, json_string(title));
    json_object_set_new(choice, "title", by_locale);
}

/* `value = title | ...` in `locale` for option `name`. */
static int add_titles(json_t *options, const char *name, const char *text, const char *locale, const spot *at,
                      char **err) {
    json_t *choices = choices_of(json_object_get(options, name));
    if (!choices) return fail_at(at, err, "this product has no option '%s' to give titles to", name);
    for (const char *p = text; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        char *piece = trimmed(p, n);
        char *eq = strchr(piece, '=');
        char *value = eq ? trimmed(piece, (size_t)(eq - piece)) : NULL;
        char *title = eq ? trimmed(eq + 1, strlen(eq + 1)) : NULL;
        json_t *choice = NULL;
        size_t i;
        json_t *c;
        json_array_foreach(choices, i, c) if (value && strcmp(json_string_value(json_object_get(c, "value")), value) == 0)
            choice = c;
        int rc = PL_OK;
        if (piece[0] && (!eq || !value[0] || !title[0]))
            rc = fail_at(at, err, "'%s': write value = title, as in oat = %s", piece, "Oat milk");
        else if (piece[0] && !choice)
            rc = fail_at(at, err, "'%s' is not a choice of the option '%s'", value, name);
        else if (piece[0])
            set_choice_title(choice, locale, title);
        free(piece);
        free(value);
        free(title);
        if (rc != PL_OK) return rc;
        p += n + (bar ? 1 : 0);
    }
    return PL_OK;
}

/* The choice of `choices` whose value is `value` (borrowed), or NULL. */
static json_t *choice_named(json_t *choices, const char *value) {
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) if (strcmp(json_string_value(json_object_get(c, "value")), value) == 0) return c;
    return NULL;
}

/* `value = alias | alias; value = alias` of option `name` in `locale`
 * (NULL: every locale, "*") into the choices' "aliases". */
static int add_choice_aliases(json_t *options, const char *name, const char *text, const char *locale,
                              const spot *at, char **err) {
    json_t *choices = choices_of(json_object_get(options, name));
    if (!choices) return fail_at(at, err, "this product has no option '%s' to give aliases to", name);
    int rc = PL_OK;
    for (const char *p = text; *p && rc == PL_OK;) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        char *part = trimmed(p, n);
        char *eq = strchr(part, '=');
        char *value = eq ? trimmed(part, (size_t)(eq - part)) : NULL;
        json_t *choice = value ? choice_named(choices, value) : NULL;
        json_t *had = choice ? json_object_get(choice, "aliases") : NULL;
        if (part[0] && (!eq || !value[0]))
            rc = fail_at(at, err, "'%s': write value = alias | alias; value = alias, as in oat = oat milk | avena; "
                         "soy = soja", part);
        else if (part[0] && !choice)
            rc = fail_at(at, err, "'%s' is not a choice of the option '%s'", value, name);
        else if (part[0] && json_object_get(had, locale ? locale : "*"))
            rc = fail_at(at, err, "the choice '%s' has its aliases twice in this cell", value);
        else if (part[0]) {
            char whose[120];
            snprintf(whose, sizeof whose, "choice '%.64s': ", value);
            json_t *list = alias_list(eq + 1, whose, at, err);
            if (!list) rc = PL_ERR;
            else {
                if (!had) json_object_set_new(choice, "aliases", had = json_object());
                json_object_set_new(had, locale ? locale : "*", list);
            }
        }
        free(part);
        free(value);
        p += n + (semi ? 1 : 0);
    }
    return rc;
}

/* The aliases of the row's option_aliases columns, once every option is
 * read (an option of the options column has them too). */
static int row_choice_aliases(const pl_csv_origin *o, const record *rec, const char *currency, json_t *options,
                              char **err) {
    for (size_t i = 0; i < o->ncols; i++) {
        const column *col = &o->cols[i];
        const char *text = cell(rec, i);
        spot at = {o, rec->line, i, currency};
        if (col->kind != COL_OPTION_ALIASES || !text[0]) continue;
        if (add_choice_aliases(options, col->option, text, col->locale, &at, err) != PL_OK) return PL_ERR;
    }
    return PL_OK;
}

/* The row's options object, or NULL in *out when it has none. Plain columns
 * first, titles in other languages after, whatever the column order; the
 * choices' aliases last. */
static int row_options(const pl_csv_origin *o, const record *rec, const char *currency, json_t **out, char **err) {
    json_t *options = json_object();
    int rc = PL_OK;
    for (int titles = 0; titles < 2 && rc == PL_OK; titles++) {
        for (size_t i = 0; i < o->ncols && rc == PL_OK; i++) {
            const column *col = &o->cols[i];
            const char *text = cell(rec, i);
            spot at = {o, rec->line, i, currency};
            if (!text[0] || (col->locale != NULL) != titles) continue;
            if (col->kind == COL_OPTIONS)
                rc = each_named(options, text, col->locale, titles ? add_titles : add_named_option, &at, err);
            else if (col->kind == COL_OPTION && titles)
                rc = add_titles(options, col->option, text, col->locale, &at, err);
            else if (col->kind == COL_OPTION)
                rc = add_option(options, col->option, text, &at, err);
        }
    }
    if (rc == PL_OK) rc = row_choice_aliases(o, rec, currency, options, err);
    if (rc != PL_OK || json_object_size(options) == 0) {
        json_decref(options);
        options = NULL;
    }
    *out = options;
    return rc;
}

/* --- rows -------------------------------------------------------------------------- */

static void set_if(json_t *p, const char *key, json_t *v) {
    if (v) json_object_set_new(p, key, v);
}

/* The cell of the (only) column of `kind`. */
static const char *cell_of(const pl_csv_origin *o, const record *rec, col_kind kind) {
    for (size_t i = 0; i < o->ncols; i++)
        if (o->cols[i].kind == kind) return cell(rec, i);
    return "";
}

/* The column of `kind` (SIZE_MAX: none). */
static size_t column_index(const pl_csv_origin *o, col_kind kind) {
    for (size_t i = 0; i < o->ncols; i++)
        if (o->cols[i].kind == kind) return i;
    return (size_t)-1;
}

static int valid_currency_code(const char *c) {
    return strlen(c) == 3 && isupper((unsigned char)c[0]) && isupper((unsigned char)c[1]) &&
           isupper((unsigned char)c[2]);
}

/* The row's price in minor units (new; NULL for an empty minor cell, which
 * the validator names). From price_major, converted with the currency's
 * ISO 4217 digits; from price, a whole number as it is, and a decimal one
 * refused with the number it stands for. */
static int row_price(const pl_csv_origin *o, const record *rec, const char *currency, json_t **out, char **err) {
    *out = NULL;
    if (o->major) {
        spot at = {o, rec->line, column_index(o, COL_PRICE_MAJOR), currency};
        if (!valid_currency_code(currency)) {
            spot cur = {o, rec->line, column_index(o, COL_CURRENCY), NULL};
            return fail_at(&cur, err, "currency must be an ISO 4217 code such as EUR: it says how many decimals "
                           "the price_major column has");
        }
        long long v = 0;
        if (major_price(cell(rec, at.col), &at, &v, err) != PL_OK) return PL_ERR;
        *out = json_integer(v);
        return PL_OK;
    }
    spot at = {o, rec->line, column_index(o, COL_PRICE), currency};
    const char *text = cell(rec, at.col);
    long long v = 0;
    amount_reading r = AMOUNT_NOT_A_NUMBER;
    if (strpbrk(text, ".,") && valid_currency_code(currency))
        r = major_units(text, strlen(text), pl_money_decimals(currency), &v);
    if (r == AMOUNT_OK)
        return fail_at(&at, err, "price must be a non-negative integer in minor units (%lld for %s %s); to write "
                       "%s, name the column price_major", v, text, currency, text);
    if (r == AMOUNT_AMBIGUOUS) {
        const char *mark = strpbrk(text, ".,");
        return fail_at(&at, err, "price must be a non-negative integer in minor units, written with no thousands "
                       "separator: %.*s%s, not %s", (int)(mark - text), text, mark + 1, text);
    }
    if (text[0]) *out = number_or_text(text);
    return PL_OK;
}

static json_t *row_product(const pl_csv_origin *o, const record *rec, char **err) {
    for (size_t i = o->ncols; i < rec->n; i++) {
        spot at = {o, rec->line, i, NULL};
        if (rec->cells[i][0]) {
            fail_at(&at, err, "this row has more cells than the header has columns");
            return NULL;
        }
    }
    const char *currency = cell_of(o, rec, COL_CURRENCY);
    json_t *price = NULL;
    if (row_price(o, rec, currency, &price, err) != PL_OK) return NULL;
    json_t *options = NULL, *aliases = NULL;
    if (row_options(o, rec, o->major ? currency : NULL, &options, err) != PL_OK ||
        row_aliases(o, rec, &aliases, err) != PL_OK) {
        json_decref(price);
        json_decref(options);
        return NULL;
    }
    json_t *p = json_pack("{s:s}", "sku", cell_of(o, rec, COL_SKU));
    set_if(p, "title", localized(o, rec, COL_TITLE));
    set_if(p, "description", localized(o, rec, COL_DESCRIPTION));
    const char *stock = cell_of(o, rec, COL_STOCK), *image = cell_of(o, rec, COL_IMAGE);
    set_if(p, "price", price);
    set_if(p, "currency", currency[0] ? json_string(currency) : NULL);
    set_if(p, "tags", tag_list(cell_of(o, rec, COL_TAGS)));
    set_if(p, "aliases", aliases);
    set_if(p, "stock", stock[0] ? number_or_text(stock) : NULL);
    set_if(p, "image", image[0] ? json_string(image) : NULL);
    set_if(p, "options", options);
    return p;
}

static int read_rows(pl_csv_origin *o, reader *r, json_t *products, char **err) {
    record rec = {0};
    int rc = read_record(r, &rec, o, err);
    while (rc == 1 && record_blank(&rec)) rc = read_record(r, &rec, o, err);
    if (rc == 0) rc = pl_fail(err, "%s:1: the file is empty: its first row must name the columns (%s)", o->name,
                              known_columns);
    if (rc == 1) rc = parse_header(o, &rec, err) == PL_OK ? 1 : PL_ERR;
    while (rc == 1 && (rc = read_record(r, &rec, o, err)) == 1) {
        if (record_blank(&rec)) continue;
        json_t *p = row_product(o, &rec, err);
        if (!p) {
            rc = PL_ERR;
            break;
        }
        json_array_append_new(products, p);
        o->lines = realloc(o->lines, sizeof *o->lines * (o->nproducts + 1));
        if (!o->lines) abort();
        o->lines[o->nproducts++] = rec.line;
    }
    record_clear(&rec);
    free(rec.cells);
    return rc == PL_ERR ? PL_ERR : PL_OK;
}

json_t *pl_catalog_csv_read(const char *text, size_t len, const char *name, pl_csv_origin **origin,
                            char **err) {
    pl_csv_origin *o = calloc(1, sizeof *o);
    if (!o) abort();
    o->name = pl_strdup(name);
    reader r = {text, text + len, 1, ','};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) r.p += 3; /* a spreadsheet's byte order mark */
    r.sep = detect_separator(r.p, r.end);
    json_t *products = json_array();
    if (read_rows(o, &r, products, err) != PL_OK) {
        json_decref(products);
        pl_catalog_csv_origin_free(o);
        return NULL;
    }
    *origin = o;
    return products;
}

/* --- where ------------------------------------------------------------------------- */

static col_kind kind_of_field(const char *field) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, field) == 0) return kinds[i].kind;
    return COL_NOTE;
}

/* The column a field came from: its plain column before a localized one;
 * an option's own column before the options column. SIZE_MAX: none. */
static size_t column_of(const pl_csv_origin *o, const char *field, const char *option) {
    col_kind kind = kind_of_field(field);
    if (kind == COL_PRICE && o->major) kind = COL_PRICE_MAJOR;
    size_t found = (size_t)-1;
    for (size_t i = 0; i < o->ncols; i++) {
        const column *c = &o->cols[i];
        if (c->locale) continue;
        if (option && c->kind == COL_OPTION && strcmp(c->option, option) == 0) return i;
        if (c->kind == kind && kind != COL_NOTE && found == (size_t)-1) found = i;
    }
    for (size_t i = 0; i < o->ncols && found == (size_t)-1; i++)
        if (o->cols[i].kind == kind && kind != COL_NOTE) found = i;
    return found;
}

char *pl_catalog_csv_where(const pl_csv_origin *o, size_t product, const char *field, const char *option) {
    int line = product < o->nproducts ? o->lines[product] : 1;
    size_t col = field ? column_of(o, field, option) : (size_t)-1;
    if (col == (size_t)-1) return pl_strdupf("%s:%d", o->name, line);
    return where(o, line, col);
}

void pl_catalog_csv_origin_free(pl_csv_origin *o) {
    if (!o) return;
    for (size_t i = 0; i < o->ncols; i++) {
        free(o->cols[i].header);
        free(o->cols[i].option);
        free(o->cols[i].locale);
    }
    free(o->cols);
    free(o->lines);
    free(o->name);
    free(o);
}
