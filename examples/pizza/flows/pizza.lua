-- flows/pizza.lua: build one pizza. Which pizza, what size, which crust,
-- into the cart; then extra toppings, one at a time, until "that's it".
-- Returns the pizza's sku.
--
-- Called with {sku =, words =} when the shopper already named it: "una
-- margherita grande" skips the questions the words have answered.
local luigi = require "lib.luigi"

-- The next question the slots have no answer for yet.
local function next_question(c)
  if not c.slots.size then return "size" end
  if not c.slots.crust then return "crust" end
  return "add"
end

-- Keeps what the shopper's words say about this pizza.
local function take(c, pizza, words)
  c.slots.sku = pizza.sku
  c.slots.qty = luigi.quantity(words)
  c.slots.size = c.slots.size or luigi.option_in(pizza, "size", words)
  c.slots.crust = c.slots.crust or luigi.option_in(pizza, "crust", words)
  return next_question(c)
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

return {
  start = function(c)
    local pizza = c.catalog:get(c.slots.sku)
    if pizza and not pizza.in_stock then
      c:say("sold_out", { product = pizza.title })
      pizza = nil
    end
    if not pizza then return "choose" end
    return take(c, pizza, c.slots.words)
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
      if not (pizza and pizza:has_tag "pizza") then pizza = luigi.named(c, msg.text, "pizza") end
      if not pizza then
        c:say(luigi.says_any(msg.text, luigi.words.pineapple) and "no_pineapple" or "didnt_catch_pizza")
        return "choose"
      end
      if not pizza.in_stock then
        c:say("sold_out", { product = pizza.title })
        return "choose"
      end
      return take(c, pizza, msg.text)
    end,
  },

  size = {
    ask = function(c)
      local pizza = c.catalog:get(c.slots.sku)
      local choices = {}
      for _, size in ipairs(pizza.options.size) do choices[#choices + 1] = luigi.option_choice(c, pizza, size) end
      c:say("ask_size", { pizza = pizza.title }, { choices = choices })
    end,
    answer = function(c, msg)
      local pizza = c.catalog:get(c.slots.sku)
      local size = pizza:option("size", msg.payload) and msg.payload or luigi.option_in(pizza, "size", msg.text)
      if not size then
        c:say("didnt_catch_size", { pizza = pizza.title })
        return "size"
      end
      c.slots.size = size
      c.slots.crust = c.slots.crust or luigi.option_in(pizza, "crust", msg.text) -- "large, thin"
      return next_question(c)
    end,
  },

  crust = {
    ask = function(c)
      local pizza = c.catalog:get(c.slots.sku)
      local choices = {}
      for _, crust in ipairs(pizza.options.crust) do choices[#choices + 1] = luigi.option_choice(c, pizza, crust) end
      c:say("ask_crust", { pizza = pizza.title, size = pizza:option("size", c.slots.size).title }, { choices = choices })
    end,
    answer = function(c, msg)
      local pizza = c.catalog:get(c.slots.sku)
      local crust = pizza:option("crust", msg.payload) and msg.payload or luigi.option_in(pizza, "crust", msg.text)
      if not crust then
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
    return "extras"
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
      if msg.payload == "extras:done" or luigi.says_any(msg.text, luigi.words.done) then return "finish" end
      local topping = c.catalog:get(msg.payload)
      if not (topping and topping:has_tag "topping") then topping = luigi.named(c, msg.text, "topping") end
      if not topping then
        c:say "didnt_catch_extra"
        return "extras"
      end
      if not topping.in_stock then
        c:say("sold_out", { product = topping.title })
        return "extras"
      end
      local extras = c.slots.extras or {}
      for _, sku in ipairs(extras) do
        if sku == topping.sku then
          c:say("already_extra", { extra = topping.title })
          return "extras"
        end
      end
      -- one portion of the topping for each pizza of this line
      c.cart:add(topping, { qty = c.slots.qty or 1 })
      extras[#extras + 1] = topping.sku
      c.slots.extras = extras
      c:say("added_extra", { extra = topping.title })
      if #extras >= luigi.MAX_EXTRAS or #toppings(c) == 0 then return "finish" end
      return "extras"
    end,
  },

  finish = function(c)
    return c:done(c.slots.sku)
  end,
}
