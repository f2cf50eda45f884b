-- lib/luigi.lua: what Luigi's flows, rules and router share: the house
-- rules of the shop (delivery fee, toppings per pizza), the words shoppers
-- type for sizes, crusts, yes and no, and reading the cart back to them.
-- Loaded with require "lib.luigi" (modules in the bot folder).
local text = require "parley.text"

local luigi = {}

-- The delivery fee is the catalog product "delivery" (so the cart total is
-- what the shopper pays); it is free from this subtotal, in cents.
luigi.DELIVERY_SKU = "delivery"
luigi.FREE_DELIVERY_FROM = 3000
luigi.MAX_EXTRAS = 3

-- Words shoppers type, in English and Italian alike (people mix them).
-- Compared after folding, so case, accents and apostrophes do not matter.
luigi.words = {
  yes = { "yes", "yeah", "yep", "sure", "ok", "okay", "si", "certo", "volentieri", "va bene", "perche no" },
  no = { "no", "nope", "no thanks", "nothing", "none", "niente", "nulla", "no grazie" },
  done = { "no", "that's all", "that's it", "thats all", "thats it", "nothing else", "done", "checkout", "basta", "basta cosi",
           "e tutto", "nient'altro", "finito", "niente altro" },
  delivery = { "delivery", "deliver", "bring it", "consegna", "domicilio", "a casa", "portatela", "portala" },
  pickup = { "pickup", "pick up", "pick it up", "collect", "takeaway", "take away", "ritiro", "ritirare",
             "passo io", "passo a ritirare", "asporto", "vengo io" },
  pineapple = { "pineapple", "ananas", "hawaii", "hawaiian", "hawaiana" },
  -- option values of the catalog, by the words that name them
  size = {
    regular = { "regular", "normal", "normale", "medium", "media" },
    large = { "large", "big", "grande", "grandi" },
    family = { "family", "famiglia", "maxi", "xl" },
  },
  crust = {
    classic = { "classic", "classica", "classico", "napoletana" },
    thin = { "thin", "crispy", "sottile", "romana", "croccante" },
    gluten_free = { "gluten free", "senza glutine", "celiac", "celiaco" },
  },
}

-- Number words at the start of a message ("two diavola", "due margherite").
local numbers = { a = 1, an = 1, one = 1, two = 2, three = 3, un = 1, uno = 1, una = 1, due = 2, tre = 3 }

-- Tags that sort the menu rather than name a product: "a spicy pizza"
-- names no pizza in particular.
local category_tags = {
  pizza = true, topping = true, drink = true, dessert = true, addon = true, service = true,
  vegetarian = true, vegan = true, meat = true, spicy = true, cheese = true, classic = true,
  cold = true, sweet = true, bestseller = true, pairs_spicy = true,
}

-- Title words too common to name a product on their own.
local generic_words = {
  extra = true, pizza = true, fresh = true, fresco = true, house = true, casa = true, della = true,
  glass = true, calice = true, with = true, please = true, grazie = true, vorrei = true,
}

local function fold(s)
  return type(s) == "string" and (text.fold(s) or "") or ""
end

-- Whether the shopper's words contain one of the phrases (whole words).
function luigi.says_any(words, phrases)
  local typed = fold(words)
  if typed == "" then return false end
  for _, phrase in ipairs(phrases) do
    if text.has_phrase(typed, fold(phrase)) then return true end
  end
  return false
end

-- How many the shopper asked for: the first number in the words, if a
-- word follows it ("2 margherita", "could I have two diavola" -> 2; a lone
-- "2" is the number of a choice).
function luigi.quantity(words)
  local tokens = {}
  for token in fold(words):gmatch("%S+") do tokens[#tokens + 1] = token end
  for i = 1, #tokens - 1 do
    local n = numbers[tokens[i]] or (tokens[i]:match("^%d+$") and math.tointeger(tonumber(tokens[i])))
    if n then return (n >= 1 and n <= 20) and n or 1 end
  end
  return 1
end

-- Whether the folded words name product p: its whole title, a title word
-- (or the start of one, four letters or more) or a tag that is a name
-- ("beer", "vino") rather than a category.
local function names(p, typed)
  local title = fold(p.title)
  if text.has_phrase(typed, title) then return true end
  for word in typed:gmatch("%S+") do
    if #word >= 4 and not generic_words[word] then
      for title_word in title:gmatch("%S+") do
        if title_word:sub(1, #word) == word and not generic_words[title_word] then return true end
      end
    end
  end
  for _, tag in ipairs(p.tags) do
    if not category_tags[tag] and text.has_phrase(typed, fold(tag)) then return true end
  end
  return false
end

-- The product with `tag` that the shopper's words name, sold out or not
-- (the caller says "sold out" rather than "what?"), or nil.
--
-- c.catalog:find alone is too eager here: it also matches on a tag or a
-- word of the description, so "a unicorn pizza" would find the first pizza.
function luigi.named(c, words, tag)
  local typed = fold(words)
  if typed == "" then return nil end
  for _, p in ipairs(c.catalog:search(words, { tag = tag, all = true })) do
    if names(p, typed) then return p end
  end
  return nil
end

-- The value of option `name` (size, crust) that the words name, or nil:
-- its title in the shopper's language, its value, or a word from above.
function luigi.option_in(product, name, words)
  local typed = fold(words)
  if typed == "" or not (product.options and product.options[name]) then return nil end
  for _, choice in ipairs(product.options[name]) do
    local phrases = { choice.title, choice.value }
    for _, w in ipairs((luigi.words[name] or {})[choice.value] or {}) do phrases[#phrases + 1] = w end
    if luigi.says_any(typed, phrases) then return choice.value end
  end
  return nil
end

-- A choice button for an option: "Large · +€3.00".
function luigi.option_choice(c, product, choice)
  local title = choice.title
  if choice.price > 0 then title = title .. " · +" .. c:price(choice.price, product.currency) end
  return { title = title, payload = choice.value }
end

-- How many pizzas are in the cart.
function luigi.pizzas_in(c)
  local n = 0
  for _, line in ipairs(c.cart:lines()) do
    local p = c.catalog:get(line.sku)
    if p and p:has_tag "pizza" then n = n + line.qty end
  end
  return n
end

-- " (Large, Classic crust)": size before crust, as people say it.
local function options_text(p, options)
  local titles = {}
  for _, name in ipairs({ "size", "crust" }) do
    local choice = p and options[name] and p:option(name, options[name])
    if choice then titles[#titles + 1] = choice.title end
  end
  return #titles > 0 and (" (" .. table.concat(titles, ", ") .. ")") or ""
end

-- The cart, one "1 × Diavola (Large, Classic crust) — €13.00" per line.
function luigi.cart_text(c)
  local lines = {}
  for _, line in ipairs(c.cart:lines()) do
    lines[#lines + 1] = c:t("summary_line", {
      qty = line.qty, title = line.title,
      options = options_text(c.catalog:get(line.sku), line.options or {}),
      price = c:price(line.total, line.currency),
    })
  end
  return table.concat(lines, "\n")
end

return luigi
