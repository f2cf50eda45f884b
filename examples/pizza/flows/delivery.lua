-- flows/delivery.lua: shall we bring it, or will you pick it up? Delivery
-- asks for the address and puts the delivery fee in the cart, unless the
-- order is big enough to deliver for free. Returns {mode =, address =}.
local luigi = require "lib.luigi"

-- What delivery costs, and from when it is free, as the shopper reads it.
local function fee_words(c)
  local fee = c.catalog:get(luigi.DELIVERY_SKU)
  return { fee = c:price(fee), free_from = c:price(luigi.FREE_DELIVERY_FROM, fee.currency) }
end

return {
  start = function(c)
    return "how"
  end,

  how = {
    ask = function(c)
      local words = fee_words(c)
      c:say("ask_delivery", words, {
        choices = {
          { title = c:t("delivery_choice", words), payload = "delivery" },
          { title = c:t "pickup_choice", payload = "pickup" },
        },
      })
    end,
    answer = function(c, msg)
      -- typed: "I'll pick it up", "consegna", "the first one"
      local picked = msg.payload or luigi.nth(c:understand(), { "delivery", "pickup" })
      if picked == "pickup" or luigi.says_any(msg.text, luigi.words.pickup) then return "pickup" end
      if picked == "delivery" or luigi.says_any(msg.text, luigi.words.delivery) then return "address" end
      c:say "didnt_catch_delivery"
      return "how"
    end,
  },

  address = {
    ask = function(c)
      c:say "ask_address"
    end,
    -- A street and a number, at least: "Via Roma 12, Milano".
    answer = function(c, msg)
      local typed = msg.payload == nil and msg.text or nil
      if not (typed and typed:find("%a") and typed:find("%d") and #typed >= 5) then
        c:say "didnt_catch_address"
        return "address"
      end
      c.slots.address = typed:gsub("^%s+", ""):gsub("%s+$", "")
      return "fee"
    end,
  },

  fee = function(c)
    local subtotal = c.cart:total()
    if subtotal >= luigi.FREE_DELIVERY_FROM then
      c:say("free_delivery", fee_words(c))
    else
      c.cart:add(luigi.DELIVERY_SKU)
      c:say("delivery_fee", fee_words(c))
    end
    return c:done { mode = "delivery", address = c.slots.address }
  end,

  pickup = function(c)
    return c:done { mode = "pickup" }
  end,
}
