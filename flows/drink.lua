-- flows/drink.lua: put what the shopper asked for in the cart, asking only
-- what is missing (a drink's size), and return to the caller. Called with
-- {words =} when the shopper already said what they want: "two large oat
-- lattes and a croissant" is understood (c:understand) and only the size
-- of a drink that has none is asked. Called without, it asks for a drink.

-- What the shopper's words ask for, as the slots keep it: a queue of
-- {sku, qty, size, milk}.
local function queue_of(said)
  local queue = {}
  for _, item in ipairs(said.items) do
    queue[#queue + 1] = { sku = item.sku, qty = item.qty, size = item.options.size, milk = item.options.milk }
  end
  return queue
end

-- The size named in a size answer: a tapped size, or typed ("large", "L",
-- "a large one"), or nil.
local function size_in(c, drink, msg)
  if drink:option("size", msg.payload) then return msg.payload end
  local said = c:understand()
  local size = said.options and said.options.size
  for _, item in ipairs(said.items) do
    if item.sku == drink.sku then size = size or item.options.size end
  end
  return drink:option("size", size) and size or nil
end

-- A drink that ran out is named, not swapped for another; the rest of the
-- queue goes on. With nothing left to add, the caller goes on when
-- something was added or the shopper named what they wanted (a sold-out
-- pastry after a drink is no reason to ask for a drink); else it asks.
local function ran_out(c, p)
  c:say("ran_out", { product = p.title })
  if #c.slots.queue > 0 then return "next" end
  if c.slots.last or c.slots.named then return c:done(c.slots.last) end
  return "choose"
end

-- How the cart line reads in "added": "Latte" or "Latte with Oat milk".
local function drink_title(c, p, item)
  local milk = item.milk and p:option("milk", item.milk)
  return milk and c:t("with_milk", { drink = p.title, milk = milk.title }) or p.title
end

return {
  start = function(c)
    local words = c.slots.words
    c.slots.words = nil
    c.slots.queue = words and queue_of(c:understand(words)) or {}
    c.slots.named = #c.slots.queue > 0 or nil
    return #c.slots.queue > 0 and "next" or "choose"
  end,

  choose = {
    ask = function(c)
      c:say("ask_drink", nil, { choices = c:product_choices(c.catalog:by_tag "drink") })
    end,
    answer = function(c, msg)
      local drink = c.catalog:get(msg.payload)
      c.slots.queue = drink and { { sku = drink.sku, qty = 1 } } or queue_of(c:understand())
      if #c.slots.queue == 0 then
        c:say "didnt_catch_drink"
        return "choose"
      end
      return "next"
    end,
  },

  -- The next thing asked for: its size when it needs one, then the cart.
  next = function(c)
    local item = c.slots.queue[1]
    if not item then return c:done(c.slots.last) end
    local p = c.catalog:get(item.sku)
    if not p.in_stock then
      table.remove(c.slots.queue, 1)
      return ran_out(c, p)
    end
    if p.options and p.options.size and not item.size then return "size" end
    return "add"
  end,

  size = {
    ask = function(c)
      local drink = c.catalog:get(c.slots.queue[1].sku)
      local choices = {}
      for _, size in ipairs(drink.options.size) do
        local extra = size.price > 0 and (" +" .. c:price(size.price, drink.currency)) or ""
        choices[#choices + 1] = { title = size.title .. extra, payload = size.value }
      end
      c:say("ask_size", { drink = drink.title }, { choices = choices })
    end,
    answer = function(c, msg)
      local item = c.slots.queue[1]
      local drink = c.catalog:get(item.sku)
      local size = size_in(c, drink, msg)
      if not size then
        c:say("didnt_catch_size", { drink = drink.title })
        return "size"
      end
      item.size = size
      return "add"
    end,
  },

  add = function(c)
    local item = table.remove(c.slots.queue, 1)
    local p = c.catalog:get(item.sku)
    local options = p.options and { size = item.size, milk = item.milk } or nil
    -- the last one may have gone while the shopper chose the size
    if not c.cart:add(p, { qty = item.qty, options = options }) then return ran_out(c, p) end
    local size = item.size and p:option("size", item.size).title
    if not size then
      c:say(item.qty > 1 and "added_food_many" or "added_food", { product = p.title, qty = item.qty })
    else
      c:say(item.qty > 1 and "added_many" or "added", { size = size, drink = drink_title(c, p, item), qty = item.qty })
    end
    c.slots.last = p.sku
    return "next"
  end,
}
