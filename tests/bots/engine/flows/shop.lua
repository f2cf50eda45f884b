-- Exercises the catalog, the cart and the rules.
return {
  start = {
    ask = function(c) c:say("shop", nil, { choices = c:product_choices(c.catalog:by_tag "drink") }) end,
    answer = function(c, msg)
      local cmd, arg = (msg.text or ""):match("^(%S+)%s*(.*)$")
      if msg.payload then
        c.cart:add(msg.payload)
      elseif cmd == "find" then
        local found = {}
        for _, p in ipairs(c.catalog:search(arg)) do found[#found + 1] = p.sku end
        c:say_text("found: " .. table.concat(found, ","))
      elseif cmd == "all" then
        local found = {}
        for _, p in ipairs(c.catalog:all { all = arg == "all" }) do found[#found + 1] = p.sku end
        c:say_text("all: " .. table.concat(found, ","))
      elseif cmd == "add" then
        local sku, size, qty = arg:match("^(%S+)%s*(%S*)%s*(%d*)$")
        c.cart:add(sku, { options = size ~= "" and { size = size } or nil, qty = tonumber(qty) and math.tointeger(tonumber(qty)) or 1 })
      elseif cmd == "remove" then
        c.cart:remove(arg)
      elseif cmd == "qty" then
        local sku, n = arg:match("^(%S+)%s+(%d+)$")
        c.cart:set_qty(sku, math.tointeger(tonumber(n)))
      elseif cmd == "clear" then
        c.cart:clear()
      elseif cmd == "recommend" then
        local picks = c:recommend { tag = arg ~= "" and arg or nil }
        c:say("recommend", { n = #picks }, { cards = picks })
      elseif cmd == "chocolate" then
        c.profile.likes = "sweet"
      elseif cmd == "done" then
        return c:done()
      end
      local total, currency = c.cart:total()
      c:say_text(string.format("cart: %d items, %s", c.cart:count(), currency and c:price(total, currency) or "empty"))
    end,
  },
}
