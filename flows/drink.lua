-- flows/drink.lua: choose a drink and its size, put it in the cart, and
-- return to the caller. Called with {sku =, words =} when the shopper
-- already named the drink ("a large latte, please").
local text = require "parley.text"

-- The size named in the shopper's words ("large", "L", "ラージ"), if any
-- (none in words that are not UTF-8: a platform may pass any bytes on).
local function size_in(drink, words)
  if type(words) ~= "string" then return nil end
  local typed = text.fold(words)
  if not typed then return nil end
  for _, size in ipairs(drink.options.size) do
    if text.has_phrase(typed, text.fold(size.title)) or text.has_phrase(typed, size.value) then
      return size.value
    end
  end
end

-- A drink that ran out is named, not swapped for another.
local function sold_out(c, drink)
  c:say("ran_out", { product = drink.title })
  return "choose"
end

return {
  start = function(c)
    local drink = c.catalog:get(c.slots.sku)
    if not drink then return "choose" end
    if not drink.in_stock then return sold_out(c, drink) end
    c.slots.size = size_in(drink, c.slots.words)
    return c.slots.size and "add" or "size"
  end,

  choose = {
    ask = function(c)
      c:say("ask_drink", nil, { choices = c:product_choices(c.catalog:by_tag "drink") })
    end,
    answer = function(c, msg)
      local drink = c.catalog:get(msg.payload) or c.catalog:find(msg.text, "drink", { all = true })
      if not (drink and drink:has_tag "drink") then
        c:say "didnt_catch_drink"
        return "choose"
      end
      if not drink.in_stock then return sold_out(c, drink) end
      c.slots.sku = drink.sku
      c.slots.size = size_in(drink, msg.text)
      return c.slots.size and "add" or "size"
    end,
  },

  size = {
    ask = function(c)
      local drink = c.catalog:get(c.slots.sku)
      local choices = {}
      for _, size in ipairs(drink.options.size) do
        local extra = size.price > 0 and (" +" .. c:price(size.price, drink.currency)) or ""
        choices[#choices + 1] = { title = size.title .. extra, payload = size.value }
      end
      c:say("ask_size", { drink = drink.title }, { choices = choices })
    end,
    answer = function(c, msg)
      local drink = c.catalog:get(c.slots.sku)
      local size = drink:option("size", msg.payload) and msg.payload or size_in(drink, msg.text)
      if not size then
        c:say("didnt_catch_size", { drink = drink.title })
        return "size"
      end
      c.slots.size = size
      return "add"
    end,
  },

  add = function(c)
    local drink = c.catalog:get(c.slots.sku)
    -- the last one may have gone while the shopper chose the size
    if not c.cart:add(drink, { options = { size = c.slots.size } }) then return sold_out(c, drink) end
    c:say("added", { size = drink:option("size", c.slots.size).title, drink = drink.title })
    return c:done(drink.sku)
  end,
}
