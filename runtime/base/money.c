/* money: minor units, symbols and locale conventions; see money.h. */
#include "money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const struct {
    const char *code;
    int digits;
} minor_units[] = {/* ISO 4217's currencies without a minor unit */
                   {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0}, {"KMF", 0},
                   {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"VND", 0}, {"VUV", 0}, {"XAF", 0},
                   {"XOF", 0}, {"XPF", 0},
                   /* and those of three digits */
                   {"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"TND", 3}};

static const struct {
    const char *code;
    const char *symbol;
} symbols[] = {{"EUR", "€"}, {"USD", "$"}, {"GBP", "£"}, {"JPY", "¥"},
               {"CNY", "¥"}, {"INR", "₹"}, {"KRW", "₩"}};

/* Languages that write "4,50 €": amount first, decimal comma. */
static const char *const comma_languages[] = {"de", "fr", "it", "es", "nl", "pt"};

int pl_money_decimals(const char *currency) {
    for (size_t i = 0; i < sizeof minor_units / sizeof *minor_units; i++)
        if (currency && strcmp(currency, minor_units[i].code) == 0) return minor_units[i].digits;
    return 2;
}

static const char *symbol_of(const char *currency) {
    for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++)
        if (currency && strcmp(currency, symbols[i].code) == 0) return symbols[i].symbol;
    return NULL;
}

static int writes_comma(const char *locale) {
    if (!locale) return 0;
    for (size_t i = 0; i < sizeof comma_languages / sizeof *comma_languages; i++)
        if (strncmp(locale, comma_languages[i], 2) == 0 && (locale[2] == '\0' || locale[2] == '-' || locale[2] == '_'))
            return 1;
    return 0;
}

/* Digits of n grouped by threes with sep: 1234567 -> "1,234,567". */
static void grouped(unsigned long long n, char sep, char *out, size_t size) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[o++] = sep;
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

char *pl_money_format(long long amount, const char *currency, const char *locale) {
    int digits = pl_money_decimals(currency);
    int comma = writes_comma(locale);
    unsigned long long units = amount < 0 ? (unsigned long long)(-(amount + 1)) + 1 : (unsigned long long)amount;
    unsigned long long scale = 1;
    for (int i = 0; i < digits; i++) scale *= 10;
    char major[40], minor[8] = "", number[64];
    grouped(units / scale, comma ? '.' : ',', major, sizeof major);
    for (int i = digits - 1, rest = (int)(units % scale); i >= 0; i--, rest /= 10)
        minor[i] = (char)('0' + rest % 10);
    minor[digits] = '\0';
    snprintf(number, sizeof number, "%s%s%s", major, digits > 0 ? (comma ? "," : ".") : "", minor);
    const char *symbol = symbol_of(currency);
    const char *sign = amount < 0 ? "-" : "";
    if (comma) return pl_strdupf("%s%s %s", sign, number, symbol ? symbol : currency);
    if (symbol) return pl_strdupf("%s%s%s", sign, symbol, number);
    return pl_strdupf("%s%s %s", sign, number, currency ? currency : "");
}
