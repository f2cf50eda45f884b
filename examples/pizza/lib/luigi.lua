-- lib/luigi.lua: what Luigi's flows, rules and router share: the house
-- rules of the shop (delivery fee, toppings per pizza), what a typed
-- message orders (sorted from c:understand) and the few words it leaves
-- to us ("that's all", "pickup"), and reading the cart back to them.
-- Loaded with require "lib.luigi" (modules in the bot folder).
local text = require "parley.text"

local luigi = {}

-- The delivery fee is the catalog product "delivery" (so the cart total is
-- what the shopper pays); it is free from this subtotal, in cents.
luigi.DELIVERY_SKU = "delivery"
luigi.FREE_DELIVERY_FROM = 3000
luigi.MAX_EXTRAS = 3

-- Words shoppers type that name no product, in English and Italian alike
-- (people mix them); the catalog's own words (pizzas, sizes, crusts, with
-- their aliases), numbers and yes/no are c:understand's. Compared after
-- folding, so case, accents and apostrophes do not matter.
luigi.words = {
  done = { "no", "that's all", "that's it", "thats all", "thats it", "nothing", "nothing else", "none", "done", "checkout",
           "basta", "basta cosi", "e tutto", "nient'altro", "finito", "niente altro", "nulla" },
  delivery = { "delivery", "deliver", "bring it", "consegna", "domicilio", "a casa", "portatela", "portala" },
  pickup = { "pickup", "pick up", "pick it up", "collect", "takeaway", "take away", "ritiro", "ritirare",
             "passo io", "passo a ritirare", "asporto", "vengo io" },
  pineapple = { "pineapple", "ananas", "hawaii", "hawaiian", "hawaiana" },
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

-- What c:understand made of a message, sorted the way Luigi takes an
-- order: the pizzas (each with the size and crust said with it, and the
-- toppings named after it: "a marg with ham and olives"), the drinks and
-- desserts, the toppings named with no pizza at all, and the products the
-- shopper does not want ("senza funghi"), which are never put on.
--   { pizzas = {{sku =, qty =, size =, crust =, toppings = {sku...}}},
--     sides = {{product =, qty =}}, toppings = {sku...}, without = {sku = true} }
function luigi.order_in(understood)
  local order = { pizzas = {}, sides = {}, toppings = {}, without = {} }
  for _, w in ipairs(understood.without or {}) do order.without[w.sku] = true end
  local pizza -- the last pizza named: the toppings after it are its own
  for _, item in ipairs(understood.items) do
    local p = item.product
    if p:has_tag "pizza" then
      pizza = { sku = p.sku, qty = item.qty, size = item.options.size, crust = item.options.crust, toppings = {} }
      order.pizzas[#order.pizzas + 1] = pizza
    elseif p:has_tag "topping" and not order.without[p.sku] then
      local list = pizza and pizza.toppings or order.toppings
      list[#list + 1] = p.sku
    elseif p:has_tag "addon" then
      order.sides[#order.sides + 1] = { product = p, qty = item.qty }
    end
  end
  -- "extra cheese on a margherita": toppings before the first pizza are its own
  local first = order.pizzas[1]
  if first then
    for i, sku in ipairs(order.toppings) do table.insert(first.toppings, i, sku) end
    order.toppings = {}
  end
  return order
end

-- Whether the order names anything at all.
function luigi.names_anything(order)
  return #order.pizzas + #order.sides + #order.toppings > 0
end

-- Puts the drinks and desserts of an order into the cart, saying so (or
-- that one is sold out). Returns the sku of the first one added.
function luigi.add_sides(c, sides)
  local first
  for _, side in ipairs(sides) do
    local p = side.product
    if not p.in_stock then
      c:say("sold_out", { product = p.title })
    else
      c.cart:add(p, { qty = side.qty })
      c:say(side.qty > 1 and "added_items" or "added_item", { product = p.title, qty = side.qty })
      first = first or p.sku
    end
  end
  return first
end

-- The nth of a list when the shopper answered with a choice number ("2",
-- "the second one", "la seconda"), else nil.
function luigi.nth(understood, list)
  return understood.number and list[understood.number] or nil
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
