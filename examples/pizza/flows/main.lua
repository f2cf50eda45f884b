-- flows/main.lua: an evening at Luigi's. Luigi greets you and you build a
-- pizza (the `pizza` flow); he suggests what goes with it, asks what else
-- you would like (another pizza, a drink, a dessert: the `sides` flow),
-- then whether we deliver or you pick up (the `delivery` flow), and reads
-- the order back with its total.
--
-- The order stays in the cart when the conversation ends, as with the
-- barista: a payment step would take it from there. Coming back with a
-- full cart goes straight to "anything else?".
local luigi = require "lib.luigi"

return {
  start = function(c, msg)
    -- a delivery fee from an earlier round is worked out again at the end
    c.cart:remove(luigi.DELIVERY_SKU)
    if c.started_over then
      -- the cancel intent has just said so; no second hello
    elseif not c.cart:is_empty() then
      c:say("welcome_back", { count = c.cart:count(), total = c:price(c.cart:total()) })
      return "more"
    elseif c.profile.visited then
      c:say "greet_again"
    else
      c.profile.visited = true
      c:say "greet"
    end
    -- "a large margherita, please" as the very first message
    local pizza = luigi.named(c, msg.text, "pizza")
    if pizza then return c:call("pizza", { sku = pizza.sku, words = msg.text }, "after_pizza") end
    return c:call("pizza", nil, "after_pizza")
  end,

  -- Luigi only suggests something when the rules have a reason to.
  after_pizza = function(c)
    if #c:recommend { tag = "addon" } > 0 then return "offer" end
    return "more"
  end,

  offer = {
    ask = function(c)
      local picks = c:recommend { tag = "addon" }
      local choices = {}
      for _, pick in ipairs(picks) do
        choices[#choices + 1] = { title = c:t("add_item", { product = pick.product.title }), payload = pick.product.sku }
      end
      choices[#choices + 1] = { title = c:t "no_thanks", payload = "offer:no" }
      local best = picks[1]
      if best then
        c:say("pairing", { product = best.product.title, reason = best.reason }, { cards = picks, choices = choices })
      else -- the cart changed under us (an intent): just ask
        c:say("anything_else", { total = c:price(c.cart:total()) }, { choices = choices })
      end
    end,
    answer = function(c, msg)
      if msg.payload == "offer:no" or luigi.says_any(msg.text, luigi.words.no) then
        c:say "no_problem"
        return "more"
      end
      local item = c.catalog:get(msg.payload) or luigi.named(c, msg.text, "addon")
      if not item and luigi.says_any(msg.text, luigi.words.yes) then
        local best = c:recommend { tag = "addon", limit = 1 }[1]
        item = best and best.product
      end
      if not (item and item:has_tag "addon") then
        c:say "didnt_catch"
        return "offer"
      end
      if not item.in_stock then
        c:say("sold_out", { product = item.title })
        return "offer"
      end
      c.cart:add(item, { qty = luigi.quantity(msg.text) })
      c:say("added_item", { product = item.title })
      return "more"
    end,
  },

  more = {
    ask = function(c)
      c:say("anything_else", { total = c:price(c.cart:total()) }, {
        choices = {
          { title = c:t "another_pizza", payload = "more:pizza" },
          { title = c:t "something_to_drink", payload = "more:drink" },
          { title = c:t "a_dessert", payload = "more:dessert" },
          { title = c:t "thats_all", payload = "more:done" },
        },
      })
    end,
    answer = function(c, msg)
      if msg.payload == "more:pizza" then return c:call("pizza", nil, "after_pizza") end
      if msg.payload == "more:drink" then return c:call("sides", { tag = "drink" }, "more") end
      if msg.payload == "more:dessert" then return c:call("sides", { tag = "dessert" }, "more") end
      if msg.payload == "more:done" or luigi.says_any(msg.text, luigi.words.done) then
        return c:call("delivery", nil, "summary")
      end
      -- typed: "and a large diavola", "two cokes", "un tiramisù"
      local pizza = luigi.named(c, msg.text, "pizza")
      if pizza then return c:call("pizza", { sku = pizza.sku, words = msg.text }, "after_pizza") end
      local side = luigi.named(c, msg.text, "addon")
      if side and not side.in_stock then
        c:say("sold_out", { product = side.title })
      elseif side then
        c.cart:add(side, { qty = luigi.quantity(msg.text) })
        c:say("added_item", { product = side.title })
      else
        c:say "didnt_catch"
      end
      return "more"
    end,
  },

  -- c.result is what the delivery flow returned: {mode =, address =}.
  summary = function(c)
    local order = c.result or {}
    local when
    if order.mode == "delivery" then
      when = c:t("eta_delivery", { address = order.address })
    else
      when = c:t "eta_pickup"
    end
    c:say("summary", { lines = luigi.cart_text(c), total = c:price(c.cart:total()), when = when })
    return c:done()
  end,
}
