-- flows/pizza.lua: build one pizza. Which pizza, what size, which crust,
-- into the cart; then extra toppings, one at a time, until "that's it".
-- Returns {sku =, later = {pizzas...}}: the pizzas the shopper named while
-- this one was being made wait their turn in the main flow.
--
-- Called with one pizza of a typed order ({sku =, qty =, size =, crust =,
-- toppings =}, see luigi.order_in) when the shopper already named it: "una
-- margherita grande" skips the questions the words have answered.
local luigi = require "lib.luigi"

-- The next question the slots have no answer for yet.
local function next_question(c)
  if not c.slots.size then return "size" end
  if not c.slots.crust then return "crust" end
  return "add"
end

-- Takes the pizza the shopper chose, with what their words said about it.
local function take(c, pizza, named)
  named = named or {}
  c.slots.sku = pizza.sku
  c.slots.qty = named.qty or 1
  c.slots.size = named.size
  c.slots.crust = named.crust
  c.slots.toppings = named.toppings or {}
  return next_question(c)
end

-- Another pizza named while this one is being made: it waits its turn.
local function later(c, pizza)
  local list = c.slots.later or {}
  list[#list + 1] = pizza
  c.slots.later = list
end

-- What a typed answer says besides the question (a size, "and a coke",
-- "with olives", "and a diavola too"): drinks and desserts go into the
-- cart, toppings onto this pizza, other pizzas wait their turn. A pizza of
-- this kind counts as this one while it is not in the cart yet ("a large
-- margherita" at the size of a margherita). Returns the order and the
-- named size and crust of this pizza.
local function hear(c, understood, this_one)
  local order = luigi.order_in(understood)
  luigi.add_sides(c, order.sides)
  local size, crust = (understood.options or {}).size, (understood.options or {}).crust
  for _, pizza in ipairs(order.pizzas) do
    if this_one and pizza.sku == c.slots.sku then
      size, crust = pizza.size or size, pizza.crust or crust
      for _, sku in ipairs(pizza.toppings) do order.toppings[#order.toppings + 1] = sku end
      this_one = false
    else
      later(c, pizza)
    end
  end
  for _, sku in ipairs(order.toppings) do c.slots.toppings[#c.slots.toppings + 1] = sku end
  return order, size, crust
end

-- The toppings still on offer for this pizza: in stock, not on it yet, and
-- no meat for a shopper who told us they are vegetarian.
local function toppings(c)
  local chosen = {}
  for _, sku in ipairs(c.slots.extras or {}) do chosen[sku] = true end
  local list = {}
  for _, p in ipairs(c.catalog:by_tag "topping") do
    if not chosen[p.sku] and not (c.profile.vegetarian and p:has_tag "meat") then list[#list + 1] = p end
  end
  return list
end

-- Puts one topping on this pizza (a portion for each pizza of the line),
-- or says why not. Returns whether it went on.
local function put_on(c, topping)
  if not topping.in_stock then
    c:say("sold_out", { product = topping.title })
    return false
  end
  local extras = c.slots.extras or {}
  for _, sku in ipairs(extras) do
    if sku == topping.sku then
      c:say("already_extra", { extra = topping.title })
      return false
    end
  end
  if #extras >= luigi.MAX_EXTRAS then return false end
  c.cart:add(topping, { qty = c.slots.qty or 1 })
  extras[#extras + 1] = topping.sku
  c.slots.extras = extras
  c:say("added_extra", { extra = topping.title })
  return true
end

-- The toppings named before the pizza was in the cart ("with ham and olives").
local function put_on_named(c)
  local named = c.slots.toppings or {}
  c.slots.toppings = {}
  for _, sku in ipairs(named) do put_on(c, c.catalog:get(sku)) end
end

-- Enough toppings, or none left to offer: the pizza is done.
local function extras_full(c)
  return #(c.slots.extras or {}) >= luigi.MAX_EXTRAS or #toppings(c) == 0
end

local function option_choices(c, pizza, name)
  local choices = {}
  for _, choice in ipairs(pizza.options[name]) do choices[#choices + 1] = luigi.option_choice(c, pizza, choice) end
  return choices
end

return {
  start = function(c)
    local pizza = c.catalog:get(c.slots.sku)
    if pizza and not pizza.in_stock then
      c:say("sold_out", { product = pizza.title })
      pizza = nil
    end
    if not pizza then return "choose" end
    return take(c, pizza, c.slots)
  end,

  choose = {
    ask = function(c)
      -- Luigi's tip, for the first pizza of the order (the rules pick it)
      if luigi.pizzas_in(c) == 0 then
        local tip = c:recommend { tag = "pizza", limit = 1 }[1]
        if tip and c.slots.tip ~= tip.product.sku then
          c.slots.tip = tip.product.sku
          c:say("tip", { product = tip.product.title, reason = tip.reason })
        end
      end
      local pizzas = c.catalog:by_tag "pizza"
      c:say("ask_pizza", nil, { choices = c:product_choices(pizzas), cards = pizzas })
    end,
    answer = function(c, msg)
      local pizza = c.catalog:get(msg.payload)
      if pizza and pizza:has_tag "pizza" then return take(c, pizza) end
      -- typed: "two large margheritas and a coke", "la seconda"
      local understood = c:understand()
      local order = luigi.order_in(understood)
      luigi.add_sides(c, order.sides)
      local named = table.remove(order.pizzas, 1)
      for _, other in ipairs(order.pizzas) do later(c, other) end
      pizza = named and c.catalog:get(named.sku) or luigi.nth(understood, c.catalog:by_tag "pizza")
      if not pizza then
        if #order.sides == 0 then
          c:say(luigi.says_any(msg.text, luigi.words.pineapple) and "no_pineapple" or "didnt_catch_pizza")
        end
        return "choose"
      end
      if not pizza.in_stock then
        c:say("sold_out", { product = pizza.title })
        return "choose"
      end
      return take(c, pizza, named)
    end,
  },

  size = {
    ask = function(c)
      local pizza = c.catalog:get(c.slots.sku)
      c:say("ask_size", { pizza = pizza.title }, { choices = option_choices(c, pizza, "size") })
    end,
    answer = function(c, msg)
      local pizza = c.catalog:get(c.slots.sku)
      if pizza:option("size", msg.payload) then
        c.slots.size = msg.payload
        return next_question(c)
      end
      -- typed: "large", "big, thin", "the second one", "grande e una birra"
      local understood = c:understand()
      local _, size, crust = hear(c, understood, true)
      local nth = luigi.nth(understood, pizza.options.size)
      size = size or (nth and nth.value)
      if not (size and pizza:option("size", size)) then
        c:say("didnt_catch_size", { pizza = pizza.title })
        return "size"
      end
      c.slots.size = size
      if crust and pizza:option("crust", crust) then c.slots.crust = c.slots.crust or crust end
      return next_question(c)
    end,
  },

  crust = {
    ask = function(c)
      local pizza = c.catalog:get(c.slots.sku)
      c:say("ask_crust", { pizza = pizza.title, size = pizza:option("size", c.slots.size).title },
        { choices = option_choices(c, pizza, "crust") })
    end,
    answer = function(c, msg)
      local pizza = c.catalog:get(c.slots.sku)
      if pizza:option("crust", msg.payload) then
        c.slots.crust = msg.payload
        return "add"
      end
      -- typed: "thin", "senza glutine", "the first one"
      local understood = c:understand()
      local _, _, crust = hear(c, understood, true)
      local nth = luigi.nth(understood, pizza.options.crust)
      crust = crust or (nth and nth.value)
      if not (crust and pizza:option("crust", crust)) then
        c:say("didnt_catch_crust", { pizza = pizza.title })
        return "crust"
      end
      c.slots.crust = crust
      return "add"
    end,
  },

  add = function(c)
    local pizza = c.catalog:get(c.slots.sku)
    local qty = c.slots.qty or 1
    c.cart:add(pizza, { qty = qty, options = { size = c.slots.size, crust = c.slots.crust } })
    c:say(qty > 1 and "added_many" or "added", {
      qty = qty, pizza = pizza.title,
      size = pizza:option("size", c.slots.size).title, crust = pizza:option("crust", c.slots.crust).title,
    })
    put_on_named(c) -- "a diavola with olives"
    return extras_full(c) and "finish" or "extras"
  end,

  extras = {
    ask = function(c)
      local pizza = c.catalog:get(c.slots.sku)
      local first = #(c.slots.extras or {}) == 0
      local choices = {}
      for _, topping in ipairs(toppings(c)) do
        choices[#choices + 1] = { title = topping.title .. " · +" .. c:price(topping), payload = topping.sku }
      end
      choices[#choices + 1] = { title = c:t(first and "no_extras" or "extras_done"), payload = "extras:done" }
      c:say(first and "ask_extras" or "ask_more_extras", { pizza = pizza.title }, { choices = choices })
    end,
    answer = function(c, msg)
      if msg.payload == "extras:done" then return "finish" end
      local topping = c.catalog:get(msg.payload)
      if topping and topping:has_tag "topping" then
        put_on(c, topping)
        return extras_full(c) and "finish" or "extras"
      end
      -- typed: "olives and ham", "the second one", "no thanks", "basta",
      -- "and a diavola" (this pizza is done: on to the next)
      local understood = c:understand()
      local order = hear(c, understood, false)
      put_on_named(c)
      if #order.pizzas > 0 then return "finish" end
      if luigi.names_anything(order) then return extras_full(c) and "finish" or "extras" end
      local nth = luigi.nth(understood, toppings(c))
      if nth then
        put_on(c, nth)
        return extras_full(c) and "finish" or "extras"
      end
      if understood.yes == false or luigi.says_any(msg.text, luigi.words.done) then return "finish" end
      c:say "didnt_catch_extra"
      return "extras"
    end,
  },

  finish = function(c)
    return c:done { sku = c.slots.sku, later = c.slots.later }
  end,
}
