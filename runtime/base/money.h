/* money: prices as the shopper reads them. Money in parley is an integer in
 * minor units with an ISO 4217 currency (450 EUR is 4.50 EUR); this file
 * knows each currency's minor-unit digits and symbol and how locales write
 * amounts. Lua reaches it as require "parley.money" (modules.c). */
#ifndef PL_MONEY_H
#define PL_MONEY_H

/* Minor-unit digits of a currency (2 unless ISO 4217 says otherwise). */
int pl_money_decimals(const char *currency);

/* A new string: 450 EUR in "en" -> "€4.50"; 450 JPY in "ja" -> "¥450";
 * 450 EUR in "de" -> "4,50 €"; unknown symbols -> "4.50 CHF". */
char *pl_money_format(long long amount, const char *currency, const char *locale);

#endif
