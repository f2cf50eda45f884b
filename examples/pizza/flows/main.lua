-- flows/main.lua: an evening at Luigi's. Luigi greets you and you build a
-- pizza (the `pizza` flow); he suggests what goes with it, asks what else
-- you would like (another pizza, a drink, a dessert: the `sides` flow),
-- then whether we deliver or you pick up (the `delivery` flow), and reads
-- the order back with its total.
--
-- The order stays in the cart when the conversation ends, as with the
-- barista: a payment step would take it from there. Coming back with a
-- full cart goes straight to "anything else?" (or to what the message
-- orders).
local luigi = require "lib.luigi"

-- The pizzas of a typed order wait in c.slots.pizzas; each in turn goes
-- through the pizza flow, which asks only what the words left open.
local function queue(c, pizzas)
  local list = c.slots.pizzas or {}
  for _, pizza in ipairs(pizzas or {}) do list[#list + 1] = pizza end
  c.slots.pizzas = list
end

local function next_pizza(c)
  local pizza = table.remove(c.slots.pizzas or {}, 1)
  if pizza then return c:call("pizza", pizza, "after_pizza") end
end

-- A typed order ("two large margheritas and a coke"): the drinks and
-- desserts go into the cart, the pizzas one after the other. Returns the
-- next step, or nil when the words ordered nothing.
local function take_order(c, understood)
  local order = luigi.order_in(understood)
  if #order.pizzas + #order.sides == 0 then return nil end
  luigi.add_sides(c, order.sides)
  queue(c, order.pizzas)
  return next_pizza(c) or "more"
end

return {
  start = function(c, msg)
    -- a delivery fee from an earlier round is worked out again at the end
    c.cart:remove(luigi.DELIVERY_SKU)
    if c.started_over then
      -- the cancel intent has just said so; no second hello
    elseif not c.cart:is_empty() then
      c:say("welcome_back", { count = c.cart:count(), total = c:price(c.cart:total()) })
      return take_order(c, c:understand()) or "more" -- "hi again, and two beers"
    elseif c.profile.visited then
      c:say "greet_again"
    else
      c.profile.visited = true
      c:say "greet"
    end
    -- "a large margherita, please" as the very first message
    local order = luigi.order_in(c:understand())
    luigi.add_sides(c, order.sides)
    queue(c, order.pizzas)
    return next_pizza(c) or c:call("pizza", nil, "after_pizza")
  end,

  -- The next pizza of the order, if the shopper named more; then Luigi
  -- suggests something, only when the rules have a reason to.
  after_pizza = function(c)
    queue(c, c.result and c.result.later)
    local pizza = next_pizza(c)
    if pizza then return pizza end
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
      if msg.payload == "offer:no" then
        c:say "no_problem"
        return "more"
      end
      local item = c.catalog:get(msg.payload)
      if item and item:has_tag "addon" then
        luigi.add_sides(c, { { product = item, qty = 1 } })
        return item.in_stock and "more" or "offer"
      end
      -- typed: "yes", "no grazie", "the second one", "two beers and a tiramisù"
      local understood = c:understand()
      local next_step = take_order(c, understood)
      if next_step then return next_step end
      if understood.yes == false or luigi.says_any(msg.text, luigi.words.done) then
        c:say "no_problem"
        return "more"
      end
      local picks = c:recommend { tag = "addon" }
      local pick = luigi.nth(understood, picks) or (understood.yes and picks[1])
      if not pick then
        c:say "didnt_catch"
        return "offer"
      end
      luigi.add_sides(c, { { product = pick.product, qty = 1 } })
      return pick.product.in_stock and "more" or "offer"
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
      local payload = msg.payload
      if payload == nil then
        -- typed: "and a large diavola", "two cokes", "un tiramisù", "that's all", "the second one"
        local understood = c:understand()
        local next_step = take_order(c, understood)
        if next_step then return next_step end
        if understood.yes == false or luigi.says_any(msg.text, luigi.words.done) then payload = "more:done" end
        payload = payload or luigi.nth(understood, { "more:pizza", "more:drink", "more:dessert", "more:done" })
      end
      if payload == "more:pizza" then return c:call("pizza", nil, "after_pizza") end
      if payload == "more:drink" then return c:call("sides", { tag = "drink" }, "after_sides") end
      if payload == "more:dessert" then return c:call("sides", { tag = "dessert" }, "after_sides") end
      if payload == "more:done" then return c:call("delivery", nil, "summary") end
      c:say "didnt_catch"
      return "more"
    end,
  },

  -- A pizza named at the drinks ("a beer and a margherita") is made next.
  after_sides = function(c)
    queue(c, c.result and c.result.pizzas)
    return next_pizza(c) or "more"
  end,

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
