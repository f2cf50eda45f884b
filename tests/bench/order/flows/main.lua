-- flows/main.lua: the bench's ordering conversation, five messages long:
-- greet and ask the name, the drink, its size, confirm the line and its
-- price, and say the order is placed. Its slots are the name, the sku and
-- the size; the price comes from the catalog (no cart, no checkout: this
-- bot measures the core's path of a message, not the commerce features).

-- The chosen drink, its size choice and the line's price in minor units.
local function line(c)
  local drink = c.catalog:get(c.slots.sku)
  local size = drink:option("size", c.slots.size)
  return size.title .. " " .. drink.title, drink.price + size.price, drink.currency
end

return {
  start = function(c)
    c:say "greet"
    return "name"
  end,

  name = {
    intents = false, -- a name can be any word
    answer = function(c, msg)
      local name = (msg.text or ""):match "^%s*(.-)%s*$"
      if name == "" then
        c:say "ask_name"
        return nil
      end
      c.slots.name = name
      return "drink"
    end,
  },

  drink = {
    ask = function(c)
      c:say("ask_drink", { name = c.slots.name }, { choices = c:product_choices(c.catalog:by_tag "drink") })
    end,
    answer = function(c, msg)
      local drink = c.catalog:get(msg.payload) or c.catalog:find(msg.text, "drink")
      if not drink then
        c:say "didnt_catch_drink"
        return "drink"
      end
      c.slots.sku = drink.sku
      return "size"
    end,
  },

  size = {
    ask = function(c)
      local drink = c.catalog:get(c.slots.sku)
      local choices = {}
      for i, size in ipairs(drink.options.size) do
        choices[i] = { title = size.title, payload = size.value }
      end
      c:say("ask_size", { drink = drink.title }, { choices = choices })
    end,
    answer = function(c, msg)
      local drink = c.catalog:get(c.slots.sku)
      if not drink:option("size", msg.payload) then
        c:say("didnt_catch_size", { drink = drink.title })
        return "size"
      end
      c.slots.size = msg.payload
      return "confirm"
    end,
  },

  confirm = {
    ask = function(c)
      local title, price, currency = line(c)
      c:say("confirm", { line = title, price = c:price(price, currency) }, {
        choices = { { title = c:t "yes", payload = "yes" }, { title = c:t "no", payload = "no" } },
      })
    end,
    answer = function(c, msg)
      if msg.payload ~= "yes" then
        c:say "not_placed"
        return "drink"
      end
      local title, price, currency = line(c)
      c:say("placed", { name = c.slots.name, line = title, total = c:price(price, currency) })
      return c:done()
    end,
  },
}
