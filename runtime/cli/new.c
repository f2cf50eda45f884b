/* new: `parley new DIR [--locales en,es]` — writes a small working bot into
 * a new (or empty) folder: manifest, CSV catalog, two flows with questions,
 * the tone in each locale asked for, a recommendation rule, a router, a
 * spec and an editor config (.luarc.json for lua-language-server). What it
 * writes passes `parley check` and `parley test` as written
 * (tests/e2e/test_new.py); docs/authoring.md describes it.
 *
 * The files are C string constants below, filled in per locale: the words
 * of each language the scaffold speaks are in `languages`; a locale of
 * another language gets the English words, marked for translation. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "base/text.h"
#include "cli.h"

static const char new_usage[] =
    "usage: parley new DIR [--locales en,es]\n"
    "\n"
    "Writes a small working bot into DIR (a new or empty folder): bot.json, a CSV\n"
    "catalog, flows/main.lua and flows/order.lua, the tone, a recommendation rule,\n"
    "the router, spec/bot_spec.lua and .luarc.json for lua-language-server. It\n"
    "passes `parley check DIR` and `parley test DIR` as written.\n"
    "\n"
    "  --locales LIST  the bot's locales, the first the default (default: en);\n"
    "                  codes such as en, es, pt-BR. The scaffold has words for\n"
    "                  en, es, fr and de; other languages get the English words\n"
    "                  to translate.\n"
    "  --help          this text\n";

#define MAX_LOCALES 16

/* --- the words of each language --------------------------------------------- */

typedef struct {
    const char *lang;
    const char *templates; /* the lines of templates.<locale> in tone.lua */
    const char *fallback;  /* bot.json's fallback */
    const char *help;      /* the router's phrases, Lua list items */
    const char *cancel;
    const char *titles[3]; /* catalog.csv's title:<locale> cells: tee, socks, tote */
    const char *sizes;    /* option:size:<locale> */
} language;

static const language languages[] = {
    {"en",
     "      greet = \"Hi! I'm {persona.name}. What would you like today?\",\n"
     "      ask_product = { \"Which one would you like?\", \"What can I get you?\" },\n"
     "      didnt_catch = \"Sorry, I didn't catch that. Pick one below, or type its name.\",\n"
     "      ask_size = \"Which size for your {product}?\",\n"
     "      didnt_catch_size = \"Which size for the {product}? Tap one below.\",\n"
     "      added = \"Added {product} to your cart.\",\n"
     "      sold_out = \"Sorry, {product} has just sold out.\",\n"
     "      suggest = \"{product} goes well with it: {reason}\",\n"
     "      reason_pairs = \"they're made for each other.\",\n"
     "      anything_else = \"That's {count} item(s) for {total}. Anything else?\",\n"
     "      another = \"Something else\",\n"
     "      checkout = \"Check out\",\n"
     "      pay_here = \"Your order comes to {total}. Tap below to pay.\",\n"
     "      pay_button = \"Pay {total}\",\n"
     "      still_waiting = \"I'm waiting for your payment: tap the button above when you're ready.\",\n"
     "      paid = \"Paid, thank you! Your order number is {order}.\",\n"
     "      declined = \"The payment didn't go through. Want to try again?\",\n"
     "      checkout_failed = \"Sorry, I can't take payments right now. Please try again in a moment.\",\n"
     "      help = \"I can help you choose and order. Say \\\"cancel\\\" to start over.\",\n"
     "      cancelled = \"No problem, I've emptied your cart.\",\n"
     "      fallback = \"Sorry, something went wrong on my side. Could you say that again?\",\n",
     "Sorry, I can't answer right now. Please try again in a moment.",
     "\"help\", \"what can you do\"", "\"cancel\", \"start over\"", {"T-shirt", "Socks", "Tote bag"},
     "s = Small | m = Medium | l = Large"},
    {"es",
     "      greet = \"¡Hola! Soy {persona.name}. ¿Qué te apetece hoy?\",\n"
     "      ask_product = { \"¿Cuál te gustaría?\", \"¿Qué te pongo?\" },\n"
     "      didnt_catch = \"Perdona, no lo he entendido. Elige uno abajo o escribe su nombre.\",\n"
     "      ask_size = \"¿Qué talla para tu {product}?\",\n"
     "      didnt_catch_size = \"¿Qué talla para {product}? Elige una abajo.\",\n"
     "      added = \"He añadido {product} a tu carrito.\",\n"
     "      sold_out = \"Lo siento, {product} se acaba de agotar.\",\n"
     "      suggest = \"{product} combina bien: {reason}\",\n"
     "      reason_pairs = \"están hechos el uno para el otro.\",\n"
     "      anything_else = \"Llevas {count} artículo(s) por {total}. ¿Algo más?\",\n"
     "      another = \"Otra cosa\",\n"
     "      checkout = \"Pagar\",\n"
     "      pay_here = \"Tu pedido suma {total}. Toca abajo para pagar.\",\n"
     "      pay_button = \"Pagar {total}\",\n"
     "      still_waiting = \"Espero tu pago: toca el botón de arriba cuando quieras.\",\n"
     "      paid = \"¡Pagado, gracias! Tu número de pedido es {order}.\",\n"
     "      declined = \"El pago no se ha completado. ¿Lo intentamos de nuevo?\",\n"
     "      checkout_failed = \"Lo siento, ahora no puedo cobrar. Inténtalo de nuevo en un momento.\",\n"
     "      help = \"Te ayudo a elegir y a pedir. Di \\\"cancelar\\\" para empezar de nuevo.\",\n"
     "      cancelled = \"Sin problema, he vaciado tu carrito.\",\n"
     "      fallback = \"Perdona, algo ha fallado por mi parte. ¿Puedes repetirlo?\",\n",
     "Lo siento, ahora no puedo responder. Inténtalo de nuevo en un momento.",
     "\"ayuda\", \"qué puedes hacer\"", "\"cancelar\", \"empezar de nuevo\"", {"Camiseta", "Calcetines", "Bolsa de tela"},
     "s = Pequeña | m = Mediana | l = Grande"},
    {"fr",
     "      greet = \"Bonjour ! Je suis {persona.name}. Que puis-je vous proposer ?\",\n"
     "      ask_product = { \"Lequel vous ferait plaisir ?\", \"Que puis-je vous servir ?\" },\n"
     "      didnt_catch = \"Pardon, je n'ai pas compris. Choisissez ci-dessous ou tapez son nom.\",\n"
     "      ask_size = \"Quelle taille pour votre {product} ?\",\n"
     "      didnt_catch_size = \"Quelle taille pour {product} ? Choisissez ci-dessous.\",\n"
     "      added = \"{product} est dans votre panier.\",\n"
     "      sold_out = \"Désolé, {product} vient d'être épuisé.\",\n"
     "      suggest = \"{product} irait bien avec : {reason}\",\n"
     "      reason_pairs = \"ils sont faits l'un pour l'autre.\",\n"
     "      anything_else = \"Cela fait {count} article(s) pour {total}. Autre chose ?\",\n"
     "      another = \"Autre chose\",\n"
     "      checkout = \"Payer\",\n"
     "      pay_here = \"Votre commande s'élève à {total}. Touchez ci-dessous pour payer.\",\n"
     "      pay_button = \"Payer {total}\",\n"
     "      still_waiting = \"J'attends votre paiement : touchez le bouton ci-dessus quand vous êtes prêt.\",\n"
     "      paid = \"Payé, merci ! Votre numéro de commande est {order}.\",\n"
     "      declined = \"Le paiement n'est pas passé. On réessaie ?\",\n"
     "      checkout_failed = \"Désolé, je ne peux pas encaisser pour l'instant. Réessayez dans un instant.\",\n"
     "      help = \"Je vous aide à choisir et à commander. Dites \\\"annuler\\\" pour recommencer.\",\n"
     "      cancelled = \"Pas de souci, j'ai vidé votre panier.\",\n"
     "      fallback = \"Désolé, quelque chose s'est mal passé de mon côté. Pouvez-vous répéter ?\",\n",
     "Désolé, je ne peux pas répondre pour l'instant. Réessayez dans un instant.",
     "\"aide\", \"que sais-tu faire\"", "\"annuler\", \"recommencer\"", {"T-shirt", "Chaussettes", "Sac en toile"},
     "s = Petit | m = Moyen | l = Grand"},
    {"de",
     "      greet = \"Hallo! Ich bin {persona.name}. Was darf es heute sein?\",\n"
     "      ask_product = { \"Was hätten Sie gern?\", \"Was darf ich Ihnen bringen?\" },\n"
     "      didnt_catch = \"Entschuldigung, das habe ich nicht verstanden. Wählen Sie unten oder tippen Sie den Namen.\",\n"
     "      ask_size = \"Welche Größe für Ihr {product}?\",\n"
     "      didnt_catch_size = \"Welche Größe für {product}? Wählen Sie unten.\",\n"
     "      added = \"{product} liegt in Ihrem Warenkorb.\",\n"
     "      sold_out = \"Leider ist {product} gerade ausverkauft.\",\n"
     "      suggest = \"{product} passt gut dazu: {reason}\",\n"
     "      reason_pairs = \"sie sind wie füreinander gemacht.\",\n"
     "      anything_else = \"Das sind {count} Artikel für {total}. Sonst noch etwas?\",\n"
     "      another = \"Etwas anderes\",\n"
     "      checkout = \"Zur Kasse\",\n"
     "      pay_here = \"Ihre Bestellung kostet {total}. Tippen Sie unten, um zu bezahlen.\",\n"
     "      pay_button = \"{total} bezahlen\",\n"
     "      still_waiting = \"Ich warte auf Ihre Zahlung: Tippen Sie oben, sobald Sie so weit sind.\",\n"
     "      paid = \"Bezahlt, danke! Ihre Bestellnummer ist {order}.\",\n"
     "      declined = \"Die Zahlung hat nicht geklappt. Noch einmal versuchen?\",\n"
     "      checkout_failed = \"Leider kann ich gerade keine Zahlungen annehmen. Bitte gleich noch einmal.\",\n"
     "      help = \"Ich helfe Ihnen beim Aussuchen und Bestellen. Sagen Sie \\\"abbrechen\\\", um neu anzufangen.\",\n"
     "      cancelled = \"Kein Problem, Ihr Warenkorb ist leer.\",\n"
     "      fallback = \"Entschuldigung, bei mir ist etwas schiefgegangen. Noch einmal, bitte?\",\n",
     "Leider kann ich gerade nicht antworten. Bitte gleich noch einmal.",
     "\"hilfe\", \"was kannst du\"", "\"abbrechen\", \"neu anfangen\"", {"T-Shirt", "Socken", "Stofftasche"},
     "s = Klein | m = Mittel | l = Groß"},
};

/* The words of a locale's language ("es" for "es-MX"); NULL: none. */
static const language *language_of(const char *locale) {
    size_t n = strcspn(locale, "-");
    for (size_t i = 0; i < sizeof languages / sizeof *languages; i++)
        if (strlen(languages[i].lang) == n && strncmp(languages[i].lang, locale, n) == 0) return &languages[i];
    return NULL;
}

/* --- locales ------------------------------------------------------------------ */


/* Splits "en,es" into locales (pointers into the new string *buf);
 * returns their count, or -1 with a message in err (size 200). */
static int parse_locales(const char *list, char **buf, const char **locales, char *err) {
    *buf = pl_strdup(list);
    size_t len = strlen(list);
    if (len && (list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,"))) {
        snprintf(err, 200, "--locales: '%.40s' has an empty item (a list such as en,es)", list);
        return -1;
    }
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(*buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!pl_text_locale_valid(tok)) {
            snprintf(err, 200, "--locales: '%.40s' is not a locale code such as en, es or pt-BR", tok);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (strcmp(locales[i], tok) == 0) {
                snprintf(err, 200, "--locales: '%.40s' is given twice", tok);
                return -1;
            }
        if (n == MAX_LOCALES) {
            snprintf(err, 200, "--locales: at most %d locales", MAX_LOCALES);
            return -1;
        }
        locales[n++] = tok;
    }
    if (n == 0) snprintf(err, 200, "--locales wants a list such as en,es");
    return n ? n : -1;
}

/* --- writing ----------------------------------------------------------------- */

/* A growing text (open_memstream), written to a file at the end. */
typedef struct {
    char *data;
    size_t size;
    FILE *f;
} text;

static void text_open(text *t) {
    t->data = NULL;
    t->size = 0;
    t->f = open_memstream(&t->data, &t->size);
    if (!t->f) abort();
}

static int make_dirs(const char *path) {
    char *copy = pl_strdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            free(copy);
            return PL_ERR;
        }
        *p = '/';
    }
    int rc = mkdir(copy, 0755) == 0 || errno == EEXIST ? PL_OK : PL_ERR;
    free(copy);
    return rc;
}

/* Writes t (closing it) to dir/rel, making rel's folders; PL_ERR is said. */
static int text_save(text *t, const char *dir, const char *rel) {
    fclose(t->f);
    char *path = pl_strdupf("%s/%s", dir, rel);
    char *folder = pl_strdup(path);
    int rc = make_dirs(dirname(folder));
    FILE *out = rc == PL_OK ? fopen(path, "w") : NULL;
    if (!out || fwrite(t->data, 1, t->size, out) != t->size || fclose(out) != 0) {
        fprintf(stderr, "parley new: %s: %s\n", path, strerror(errno));
        if (out) fclose(out);
        rc = PL_ERR;
    }
    free(folder);
    free(path);
    free(t->data);
    return rc;
}

/* A locale as a Lua table key: en, or ["pt-BR"]. */
static void lua_key(FILE *f, const char *locale) {
    if (strchr(locale, '-')) fprintf(f, "[\"%s\"]", locale);
    else fputs(locale, f);
}

/* --- the files ------------------------------------------------------------------ */

typedef struct {
    const char *dir;
    char name[64];  /* bot.json's name, from the folder's */
    char title[64]; /* and its title */
    const char **locales;
    int nlocales;
    const char *types_dir; /* the LuaLS definitions, or NULL */
} scaffold;

static int write_manifest(const scaffold *s) {
    json_t *m = json_object();
    json_object_set_new(m, "name", json_string(s->name));
    json_object_set_new(m, "title", json_string(s->title));
    json_t *locales = json_array(), *fallback = json_object();
    for (int i = 0; i < s->nlocales; i++) {
        const language *lang = language_of(s->locales[i]);
        json_array_append_new(locales, json_string(s->locales[i]));
        json_object_set_new(fallback, s->locales[i], json_string((lang ? lang : &languages[0])->fallback));
    }
    json_object_set_new(m, "locales", locales);
    json_object_set_new(m, "start_flow", json_string("main"));
    json_object_set_new(m, "catalog", json_string("catalog.csv"));
    json_object_set_new(m, "fallback", fallback);
    text t;
    text_open(&t);
    char *dumped = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fprintf(t.f, "%s\n", dumped);
    free(dumped);
    json_decref(m);
    return text_save(&t, s->dir, "bot.json");
}

/* catalog.csv: three products; the T-shirt has a required size, the socks
 * and the tote go with it (the rule in scripts/rules.lua). */
/* The words of a locale that has columns of its own in catalog.csv (the
 * plain columns are English, for every other locale), or NULL. */
static const language *catalog_words(const char *locale) {
    const language *lang = language_of(locale);
    return lang && lang != &languages[0] ? lang : NULL;
}

static int write_catalog(const scaffold *s) {
    static const char *const skus[3] = {"tee", "socks", "tote"};
    static const char *const rows[3] = {
        "1900,EUR,clothes | bestseller,,[required] s = Small | m = Medium | l = Large +200",
        "600,EUR,clothes | goes_with_tee,,",
        "1200,EUR,bags | goes_with_tee,20,",
    };
    static const char *const notes[3] = {
        "prices in minor units: 1900 is 19.00 (docs/catalog.md)",
        "an empty stock cell: unlimited",
        "20 in stock; paid orders take from it",
    };
    text t;
    text_open(&t);
    fputs("sku,title", t.f);
    for (int i = 0; i < s->nlocales; i++)
        if (catalog_words(s->locales[i])) fprintf(t.f, ",title:%s", s->locales[i]);
    fputs(",price,currency,tags,stock,option:size", t.f);
    for (int i = 0; i < s->nlocales; i++)
        if (catalog_words(s->locales[i])) fprintf(t.f, ",option:size:%s", s->locales[i]);
    fputs(",# note\n", t.f);
    for (int r = 0; r < 3; r++) {
        fprintf(t.f, "%s,%s", skus[r], languages[0].titles[r]);
        for (int i = 0; i < s->nlocales; i++)
            if (catalog_words(s->locales[i])) fprintf(t.f, ",%s", catalog_words(s->locales[i])->titles[r]);
        fprintf(t.f, ",%s", rows[r]);
        for (int i = 0; i < s->nlocales; i++)
            if (catalog_words(s->locales[i])) fprintf(t.f, ",%s", r == 0 ? catalog_words(s->locales[i])->sizes : "");
        fprintf(t.f, ",%s\n", notes[r]);
    }
    return text_save(&t, s->dir, "catalog.csv");
}

static const char main_flow[] =
    "-- flows/main.lua: the conversation a shopper starts in (bot.json's\n"
    "-- start_flow). A step is a function (an action) or a question {ask, answer};\n"
    "-- what it returns moves the conversation: a step's name, c:call(flow, args,\n"
    "-- step_to_continue_at), c:done(), or nil to wait. README \"Writing a bot\",\n"
    "-- docs/bots.md#flows, docs/lua-api.md.\n"
    "---@type parley.Flow\n"
    "return {\n"
    "  start = function(c)\n"
    "    c:say \"greet\" -- the words are in scripts/tone.lua, per locale\n"
    "    return \"choose\"\n"
    "  end,\n"
    "\n"
    "  choose = {\n"
    "    ask = function(c)\n"
    "      c:say(\"ask_product\", nil, { choices = c:product_choices(c.catalog:all()) })\n"
    "    end,\n"
    "    answer = function(c, msg)\n"
    "      -- a tapped choice's payload is the sku; typed words are searched\n"
    "      local product = c.catalog:get(msg.payload) or c.catalog:find(msg.text)\n"
    "      if not product then\n"
    "        c:say \"didnt_catch\"\n"
    "        return \"choose\"\n"
    "      end\n"
    "      return c:call(\"order\", { sku = product.sku }, \"more\")\n"
    "    end,\n"
    "  },\n"
    "\n"
    "  -- What the rules (scripts/rules.lua) suggest, and what next.\n"
    "  more = {\n"
    "    ask = function(c)\n"
    "      local picks = c:recommend { limit = 1 }\n"
    "      if picks[1] then\n"
    "        c:say(\"suggest\", { product = picks[1].product.title, reason = picks[1].reason }, { cards = picks })\n"
    "      end\n"
    "      c:say(\"anything_else\", { count = c.cart:count(), total = c:price(c.cart:total()) }, {\n"
    "        choices = {\n"
    "          { title = c:t \"another\", payload = \"another\" },\n"
    "          { title = c:t \"checkout\", payload = \"pay\" },\n"
    "        },\n"
    "      })\n"
    "    end,\n"
    "    answer = function(c, msg)\n"
    "      if msg.payload == \"another\" then return \"choose\" end\n"
    "      if msg.payload == \"pay\" then return \"pay\" end\n"
    "      local product = c.catalog:get(msg.payload) or c.catalog:find(msg.text) -- a card tapped, or words\n"
    "      if product then return c:call(\"order\", { sku = product.sku }, \"more\") end\n"
    "      c:say \"didnt_catch\"\n"
    "      return \"more\"\n"
    "    end,\n"
    "  },\n"
    "\n"
    "  -- The cart becomes an order and a payment link (docs/commerce.md).\n"
    "  pay = function(c)\n"
    "    local order = c:checkout()\n"
    "    if not order then\n"
    "      c:say \"checkout_failed\"\n"
    "      return \"more\"\n"
    "    end\n"
    "    local total = c:price(order.total, order.currency)\n"
    "    c:say(\"pay_here\", { total = total },\n"
    "      { link = { title = c:t(\"pay_button\", { total = total }), url = order.payment_url } })\n"
    "    return \"await_payment\"\n"
    "  end,\n"
    "\n"
    "  -- The payment provider's answer arrives here as msg.payment.\n"
    "  await_payment = {\n"
    "    answer = function(c, msg)\n"
    "      if not msg.payment then\n"
    "        c:say \"still_waiting\"\n"
    "        return nil\n"
    "      end\n"
    "      if msg.payment.status == \"paid\" then\n"
    "        c:say(\"paid\", { order = msg.payment.order.id })\n"
    "        return c:done()\n"
    "      end\n"
    "      c:say \"declined\"\n"
    "      return \"more\"\n"
    "    end,\n"
    "  },\n"
    "}\n";

static const char order_flow[] =
    "-- flows/order.lua: puts one product in the cart, asking its size when it\n"
    "-- has one, then returns to the caller (flows/main.lua called it with\n"
    "-- c:call(\"order\", {sku = ...}, \"more\"); its args are c.slots here).\n"
    "-- docs/bots.md#flows, docs/lua-api.md#cart-ccart.\n"
    "---@type parley.Flow\n"
    "return {\n"
    "  start = function(c)\n"
    "    local product = c.catalog:get(c.slots.sku)\n"
    "    if product.options and product.options.size then return \"size\" end\n"
    "    return \"add\"\n"
    "  end,\n"
    "\n"
    "  size = {\n"
    "    ask = function(c)\n"
    "      local product = c.catalog:get(c.slots.sku)\n"
    "      local choices = {}\n"
    "      for _, size in ipairs(product.options.size) do\n"
    "        choices[#choices + 1] = { title = size.title, payload = size.value }\n"
    "      end\n"
    "      c:say(\"ask_size\", { product = product.title }, { choices = choices })\n"
    "    end,\n"
    "    answer = function(c, msg)\n"
    "      local product = c.catalog:get(c.slots.sku)\n"
    "      if not product:option(\"size\", msg.payload) then\n"
    "        c:say(\"didnt_catch_size\", { product = product.title })\n"
    "        return \"size\"\n"
    "      end\n"
    "      c.slots.size = msg.payload\n"
    "      return \"add\"\n"
    "    end,\n"
    "  },\n"
    "\n"
    "  add = function(c)\n"
    "    local product = c.catalog:get(c.slots.sku)\n"
    "    local options = c.slots.size and { size = c.slots.size } or nil\n"
    "    -- nil, \"out_of_stock\" when the last one went meanwhile: a fact to word\n"
    "    if not c.cart:add(product, { options = options }) then\n"
    "      c:say(\"sold_out\", { product = product.title })\n"
    "      return c:done()\n"
    "    end\n"
    "    c:say(\"added\", { product = product.title })\n"
    "    return c:done(product.sku)\n"
    "  end,\n"
    "}\n";

static int write_flows(const scaffold *s) {
    text main_t, order_t;
    text_open(&main_t);
    fputs(main_flow, main_t.f);
    if (text_save(&main_t, s->dir, "flows/main.lua") != PL_OK) return PL_ERR;
    text_open(&order_t);
    fputs(order_flow, order_t.f);
    return text_save(&order_t, s->dir, "flows/order.lua");
}

static int write_tone(const scaffold *s) {
    text t;
    text_open(&t);
    fputs("-- scripts/tone.lua: how the bot speaks. The persona, and every sentence in\n"
          "-- each locale (a list gives variations, chosen per conversation and turn).\n"
          "-- Flows only name the key: c:say \"greet\". {name} comes from the vars a\n"
          "-- c:say gives, {persona.name} from the persona. A `fallback` is required.\n"
          "-- docs/bots.md#the-tone.\n"
          "---@type parley.Tone\n"
          "return {\n"
          "  persona = { name = \"Sam\", formality = \"casual\", emoji = true },\n"
          "\n"
          "  templates = {\n",
          t.f);
    for (int i = 0; i < s->nlocales; i++) {
        const language *lang = language_of(s->locales[i]);
        fputs("    ", t.f);
        lua_key(t.f, s->locales[i]);
        fputs(" = {\n", t.f);
        if (!lang) fprintf(t.f, "      -- (%s: the English words, to translate)\n", s->locales[i]);
        fputs((lang ? lang : &languages[0])->templates, t.f);
        fputs("    },\n", t.f);
    }
    fputs("  },\n"
          "\n"
          "  -- Every outgoing text passes through here (optional).\n"
          "  style = function(text, info)\n"
          "    return (text:gsub(\"!!+\", \"!\"))\n"
          "  end,\n"
          "}\n",
          t.f);
    return text_save(&t, s->dir, "scripts/tone.lua");
}

static const char rules_script[] =
    "-- scripts/rules.lua: which products c:recommend suggests, and why. Each\n"
    "-- rule scores a product for this conversation and gives a reason (a\n"
    "-- template key of the tone). docs/bots.md#rules.\n"
    "---@type parley.Rules\n"
    "return {\n"
    "  limit = 2,\n"
    "  rules = {\n"
    "    {\n"
    "      name = \"goes with a T-shirt\",\n"
    "      score = function(p, c)\n"
    "        if c.cart:has \"tee\" and p:has_tag \"goes_with_tee\" then return 5, \"reason_pairs\" end\n"
    "      end,\n"
    "    },\n"
    "  },\n"
    "}\n";

static int write_rules(const scaffold *s) {
    text t;
    text_open(&t);
    fputs(rules_script, t.f);
    return text_save(&t, s->dir, "scripts/rules.lua");
}

/* One intent's match lists, one line per locale. */
static void router_phrases(FILE *f, const scaffold *s, int help) {
    for (int i = 0; i < s->nlocales; i++) {
        const language *lang = language_of(s->locales[i]);
        if (!lang) lang = &languages[0];
        fputs("      ", f);
        lua_key(f, s->locales[i]);
        fprintf(f, " = { %s },%s\n", help ? lang->help : lang->cancel,
                language_of(s->locales[i]) ? "" : " -- (the English words, to translate)");
    }
}

static int write_router(const scaffold *s) {
    text t;
    text_open(&t);
    fputs("-- scripts/router.lua: what a shopper can say at any step. Phrases match\n"
          "-- whole words, case- and accent-insensitively; intents are tried in name\n"
          "-- order (`parley check` warns when a phrase hides another). A choice with\n"
          "-- payload \"intent:help\" runs `help` too. docs/bots.md#the-router.\n"
          "---@type parley.Router\n"
          "return {\n"
          "  help = {\n"
          "    match = {\n",
          t.f);
    router_phrases(t.f, s, 1);
    fputs("    },\n"
          "    run = function(c)\n"
          "      c:say \"help\"\n"
          "      return c:resume() -- ask the interrupted step again\n"
          "    end,\n"
          "  },\n"
          "\n"
          "  cancel = {\n"
          "    match = {\n",
          t.f);
    router_phrases(t.f, s, 0);
    fputs("    },\n"
          "    run = function(c)\n"
          "      c.cart:clear()\n"
          "      c:say \"cancelled\"\n"
          "      return c:restart() -- the start flow from its start\n"
          "    end,\n"
          "  },\n"
          "}\n",
          t.f);
    return text_save(&t, s->dir, "scripts/router.lua");
}

static const char bot_spec[] =
    "-- spec/bot_spec.lua: the bot's conversations, run by `parley test` through\n"
    "-- the real engine, sandbox and store (docs/testing.md#specs). They tap\n"
    "-- choices by payload and look at steps and the cart, so they hold in\n"
    "-- every locale; add assertions on words with chat:says \"...\".\n"
    "local testing = require \"parley.testing\"\n"
    "\n"
    "---@return parley.testing.Chat\n"
    "local function greeted()\n"
    "  local chat = testing.conversation()\n"
    "  chat:send \"hi\"\n"
    "  return chat\n"
    "end\n"
    "\n"
    "describe(\"the shop\", function()\n"
    "  it(\"greets and offers every product\", function()\n"
    "    local chat = greeted()\n"
    "    assert.equal(\"main.choose\", chat:step())\n"
    "    assert.equal(3, #chat:choices())\n"
    "  end)\n"
    "\n"
    "  it(\"asks a T-shirt's size and puts it in the cart\", function()\n"
    "    local chat = greeted()\n"
    "    chat:tap \"tee\"\n"
    "    assert.equal(\"order.size\", chat:step())\n"
    "    chat:tap \"m\"\n"
    "    local line = chat:cart().lines[1]\n"
    "    assert.equal(\"tee\", line.sku)\n"
    "    assert.equal(\"m\", line.options.size)\n"
    "    assert.equal(\"main.more\", chat:step())\n"
    "  end)\n"
    "\n"
    "  it(\"suggests what goes with a T-shirt\", function()\n"
    "    local chat = greeted()\n"
    "    chat:tap \"tee\"\n"
    "    chat:tap \"l\"\n"
    "    assert.equal(\"socks\", chat:cards()[1].sku)\n"
    "    chat:press \"socks\" -- the card tapped\n"
    "    assert.equal(2, #chat:cart().lines)\n"
    "  end)\n"
    "\n"
    "  it(\"takes the payment\", function()\n"
    "    local chat = greeted()\n"
    "    chat:tap \"socks\"\n"
    "    chat:tap \"pay\"\n"
    "    assert.equal(\"main.await_payment\", chat:step())\n"
    "    assert.equal(600, chat:last_order().total)\n"
    "    chat:pay()\n"
    "    assert.is_nil(chat:step()) -- the conversation is over\n"
    "  end)\n"
    "\n"
    "  it(\"answers help at any step and asks the step again\", function()\n"
    "    local chat = greeted()\n"
    "    chat:press \"intent:help\"\n"
    "    assert.equal(\"main.choose\", chat:step())\n"
    "    assert.equal(3, #chat:choices())\n"
    "  end)\n"
    "end)\n";

static int write_spec(const scaffold *s) {
    text t;
    text_open(&t);
    fputs(bot_spec, t.f);
    return text_save(&t, s->dir, "spec/bot_spec.lua");
}

/* .luarc.json: lua-language-server's settings for the bot's folder, as
 * examples/pizza/.luarc.json has them: the definitions (an absolute path,
 * so that the folder may be anywhere) and busted's globals for spec/. */
static int write_luarc(const scaffold *s) {
    static const char *const busted[] = {"describe", "it",       "pending",     "before_each", "after_each",
                                         "setup",    "teardown", "lazy_setup",  "lazy_teardown", "finally",
                                         "spy",      "stub",     "mock"};
    json_t *rc = json_object();
    json_object_set_new(rc, "$schema", json_string("https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json"));
    json_object_set_new(rc, "runtime", json_pack("{s:s}", "version", "Lua 5.4"));
    json_t *library = json_array();
    if (s->types_dir) json_array_append_new(library, json_string(s->types_dir));
    json_object_set_new(rc, "workspace", json_pack("{s:o, s:[], s:b}", "library", library, "ignoreDir", "checkThirdParty", 0));
    json_t *globals = json_array();
    for (size_t i = 0; i < sizeof busted / sizeof busted[0]; i++) json_array_append_new(globals, json_string(busted[i]));
    json_object_set_new(rc, "diagnostics", json_pack("{s:o}", "globals", globals));
    text t;
    text_open(&t);
    char *dumped = json_dumps(rc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fprintf(t.f, "%s\n", dumped);
    free(dumped);
    json_decref(rc);
    return text_save(&t, s->dir, ".luarc.json");
}

/* --- the command ---------------------------------------------------------------- */

/* Whether dir is missing or an empty folder: NULL, else what to say after
 * its name: why it cannot be written into ("is not an empty folder", or
 * the system's reason: ": Permission denied"). */
static char *why_not_usable(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return errno == ENOENT ? NULL : pl_strdupf(": %s", strerror(errno));
    if (!S_ISDIR(st.st_mode)) return pl_strdup(" is a file, not a folder: parley new writes into a new or empty folder");
    DIR *d = opendir(dir);
    if (!d) return pl_strdupf(": %s", strerror(errno));
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(d);
    return empty ? NULL : pl_strdup(" is not an empty folder: parley new writes only into a new or empty one");
}

/* The bot's name from its folder's: a-z, 0-9, - and _ (others become -,
 * one for a run of them, none at the ends: "My Shop!" is my-shop); its
 * title is the folder's name with - and _ as spaces, capitalized ("My
 * Shop!", "Corner shop" of corner-shop). */
static void name_from_dir(const char *dir, char *name, char *title, size_t size) {
    char *copy = realpath(dir, NULL); /* "." names the current folder */
    if (!copy) copy = pl_strdup(dir);
    const char *base = basename(copy);
    size_t n = 0;
    for (const char *p = base; *p && n + 1 < size; p++) {
        unsigned char ch = (unsigned char)tolower((unsigned char)*p);
        char c = (isalnum(ch) && ch < 128) || ch == '_' || ch == '-' ? (char)ch : '-';
        if (c == '-' && (n == 0 || name[n - 1] == '-')) continue;
        name[n++] = c;
    }
    while (n > 0 && name[n - 1] == '-') n--;
    name[n] = '\0';
    if (n == 0) snprintf(name, size, "shop"); /* nothing of the folder's name is left */
    size_t t = 0;
    for (const char *p = base; *p && t + 1 < size; p++) {
        char c = *p == '-' || *p == '_' ? ' ' : *p;
        if (c == ' ' && (t == 0 || title[t - 1] == ' ')) continue;
        title[t++] = c;
    }
    while (t > 0 && title[t - 1] == ' ') t--;
    title[t] = '\0';
    json_t *valid = json_string(title); /* cut inside a character, or not UTF-8 */
    if (t == 0 || !valid) snprintf(title, size, "%s", name);
    json_decref(valid);
    title[0] = (char)toupper((unsigned char)title[0]);
    free(copy);
}

/* s as one shell word: as it is when it is plain, else in single quotes. */
static char *shell_word(const char *s) {
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+=:,@") == strlen(s))
        return pl_strdup(s);
    char *out = malloc(strlen(s) * 4 + 3);
    if (!out) abort();
    char *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

int pl_cmd_new(int argc, char **argv) {
    const char *dir = NULL, *locale_list = "en";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(new_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--locales") == 0 && i + 1 == argc)
            return pl_cli_usage_error("new", "--locales needs a value, such as --locales en,es");
        if (strcmp(argv[i], "--locales") == 0) locale_list = argv[++i];
        else if (strncmp(argv[i], "--locales=", 10) == 0) locale_list = argv[i] + 10;
        else if (argv[i][0] == '-') return pl_cli_usage_error("new", "unknown option '%s'", argv[i]);
        else if (dir) return pl_cli_usage_error("new", "one DIR at a time");
        else dir = argv[i];
    }
    if (!dir) return pl_cli_usage_error("new", "which folder? parley new DIR");
    char err[200];
    char *buf = NULL;
    const char *locales[MAX_LOCALES];
    int nlocales = parse_locales(locale_list, &buf, locales, err);
    if (nlocales < 0) {
        free(buf);
        return pl_cli_usage_error("new", "%s", err);
    }
    char *why = why_not_usable(dir);
    if (why) {
        free(buf);
        fprintf(stderr, "parley new: %s%s\n", dir, why);
        free(why);
        return 1;
    }
    char *types_dir = pl_cli_types_dir();
    scaffold s = {.dir = dir, .locales = locales, .nlocales = nlocales, .types_dir = types_dir};
    int made = make_dirs(dir) == PL_OK;
    if (!made) fprintf(stderr, "parley new: %s: %s\n", dir, strerror(errno));
    name_from_dir(dir, s.name, s.title, sizeof s.name);
    int written = made && write_manifest(&s) == PL_OK && write_catalog(&s) == PL_OK && write_flows(&s) == PL_OK &&
                  write_tone(&s) == PL_OK && write_rules(&s) == PL_OK && write_router(&s) == PL_OK &&
                  write_spec(&s) == PL_OK && write_luarc(&s) == PL_OK;
    int rc = written ? 0 : 1;
    if (rc == 0) {
        printf("parley new: wrote the bot '%s' in %s (locales %s)\n", s.name, dir, locale_list);
        if (!types_dir)
            printf("parley new: no LuaLS definitions found (runtime/types beside the parley binary, or\n"
                   "PREFIX/share/parley/types after make install): .luarc.json's workspace.library is empty\n");
        char *word = shell_word(dir);
        printf("next: parley check %s && parley test %s && parley chat %s\n", word, word, word);
        free(word);
    }
    free(types_dir);
    free(buf);
    return rc;
}
