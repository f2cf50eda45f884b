-- flows/sides.lua: something to drink, or a dessert. Called with
-- {tag = "drink"} or {tag = "dessert"}; adds what the shopper picks ("two
-- beers and a coke") to the cart and returns {sku =, pizzas =}: the first
-- sku added and any pizzas named on the way, for the main flow to make
-- (nothing when the shopper changed their mind).
local luigi = require "lib.luigi"

return {
  start = function(c)
    return "choose"
  end,

  choose = {
    ask = function(c)
      local list = c.catalog:by_tag(c.slots.tag)
      local choices = c:product_choices(list)
      choices[#choices + 1] = { title = c:t "nothing_for_now", payload = "sides:none" }
      c:say("ask_" .. c.slots.tag, nil, { choices = choices, cards = list })
    end,
    answer = function(c, msg)
      if msg.payload == "sides:none" then return c:done() end
      local item = c.catalog:get(msg.payload)
      if item and item:has_tag(c.slots.tag) then
        return luigi.add_sides(c, { { product = item, qty = 1 } }) and c:done { sku = item.sku } or "choose"
      end
      -- typed: "two beers", "la seconda", "no grazie", "a coke and a margherita"
      local understood = c:understand()
      local order = luigi.order_in(understood)
      local nth = luigi.nth(understood, c.catalog:by_tag(c.slots.tag))
      if nth and #order.sides == 0 then order.sides[1] = { product = nth, qty = 1 } end
      if #order.sides + #order.pizzas == 0 then
        if understood.yes == false or luigi.says_any(msg.text, luigi.words.done) then return c:done() end
        c:say "didnt_catch_side"
        return "choose"
      end
      local sku = luigi.add_sides(c, order.sides)
      if not sku and #order.pizzas == 0 then return "choose" end -- sold out: something else?
      return c:done { sku = sku, pizzas = order.pizzas }
    end,
  },
}
