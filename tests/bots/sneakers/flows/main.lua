-- The sneaker shop: "runner 42 red" adds a pair, "pay" checks out. A pair
-- whose colour sold out meanwhile is named at checkout by its colour.
-- The choices the shopper's words name, by value or title ("42 roja").
local function options_of(p, words)
  local options = {}
  for name, option in pairs(p.options or {}) do
    for _, choice in ipairs(option) do
      if words:find(choice.value, 1, true) or words:find(choice.title:lower(), 1, true) then
        options[name] = choice.value
      end
    end
  end
  return options
end

-- "EU 42, Red": the titles of a line's size and colour.
local function option_titles(p, options)
  local titles = {}
  for _, name in ipairs { "size", "colour" } do
    if options[name] then titles[#titles + 1] = p:option(name, options[name]).title end
  end
  return table.concat(titles, ", ")
end

return {
  start = function(c)
    c:say "welcome"
    return "shop"
  end,

  shop = {
    answer = function(c, msg)
      local words = (msg.text or ""):lower()
      if words == "pay" or words == "pagar" then return "pay" end
      local p = c.catalog:find(words)
      if not p then
        c:say "didnt_catch"
        return "shop"
      end
      local options = options_of(p, words)
      for name, option in pairs(p.options or {}) do
        if option.required and not options[name] then
          c:say "which_options"
          return "shop"
        end
      end
      local line, _, short = c.cart:add(p, { options = options })
      if short and short.option then -- named as c:checkout() names it
        c:say("none_left_choice", { title = short.title, choice = short.choice_title, available = short.available })
        return "shop"
      elseif not line then
        c:say("none_left", { title = short.title })
        return "shop"
      end
      c:say("added", { title = p.title, options = option_titles(p, line.options) })
      return "shop"
    end,
  },

  pay = function(c)
    local order, why, short = c:checkout()
    if why == "out_of_stock" then
      -- name what ran out: the colour when it is one colour of the shoe
      if short.option then
        c:say("sold_out_choice", { title = short.title, choice = short.choice_title })
      else
        c:say("sold_out", { title = short.title })
      end
      for i = #short.lines, 1, -1 do c.cart:remove(short.lines[i]) end
      c:say("cart", { count = c.cart:count(), total = c.cart:is_empty() and "-" or c:price(c.cart:total()) })
      return "shop"
    end
    if not order then return "shop" end
    c:say("order", { order = order.id, total = c:price(order.total, order.currency) },
      { link = { title = c:price(order.total, order.currency), url = order.payment_url } })
    return "await_payment"
  end,

  await_payment = {
    answer = function(c, msg)
      if msg.payment and msg.payment.status == "paid" then
        c:say "paid"
        return c:done()
      end
      return "shop"
    end,
  },
}
