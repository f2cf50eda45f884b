-- flows/sides.lua: something to drink, or a dessert. Called with
-- {tag = "drink"} or {tag = "dessert"}; adds one to the cart and returns
-- its sku (nothing when the shopper changed their mind).
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
      if msg.payload == "sides:none" or luigi.says_any(msg.text, luigi.words.no) then return c:done() end
      local item = c.catalog:get(msg.payload)
      if not (item and item:has_tag(c.slots.tag)) then item = luigi.named(c, msg.text, c.slots.tag) end
      if not item then
        c:say "didnt_catch_side"
        return "choose"
      end
      if not item.in_stock then
        c:say("sold_out", { product = item.title })
        return "choose"
      end
      c.cart:add(item, { qty = luigi.quantity(msg.text) })
      c:say("added_item", { product = item.title })
      return c:done(item.sku)
    end,
  },
}
