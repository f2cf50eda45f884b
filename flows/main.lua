-- flows/main.lua: the barista's conversation. Greet, pick a drink (the
-- `drink` flow), offer a pastry that goes with it, ask whether that is
-- all, sum up the order, and take the payment (a discount code on the way).
-- Typed words are understood (c:understand): "two large oat lattes and a
-- croissant" as the first message fills the cart at once.
-- Applies a discount code and says how it went; then the summary again.
local function apply_code(c, code)
  local ok, why = c.cart:apply_code(code)
  if ok then
    c:say("code_applied", { total = c:price(c.cart:total()) })
  else
    c:say("code_" .. why)
  end
  return "summary"
end

-- "Yes" to the pairing: the first pick goes in, if there still is one.
local function add_pick(c)
  local pick = c:recommend({ tag = "food" })[1]
  if not pick then return c:say "no_problem" end
  if c.cart:add(pick.product) then
    c:say("added_food", { product = pick.product.title })
  else
    c:say("ran_out", { product = pick.product.title })
  end
end

-- Whether the understood words order a drink.
local function has_drink(said)
  for _, item in ipairs(said.items) do
    if item.product:has_tag "drink" then return true end
  end
  return false
end

return {
  start = function(c)
    -- on Instagram, a shopper who mentioned the shop in their story
    local story = c.channel.story
    if story and story.kind == "mention" then c:say "story_mention" end
    if c.cart:is_empty() then
      c:say "greet"
    else
      c:say("welcome_back", { count = c.cart:count() })
    end
    -- an order in the first message goes straight in
    local said = c:understand()
    return c:call("drink", #said.items > 0 and { words = c.msg.text } or nil, "pairing")
  end,

  -- Only offer a pairing when the rules have one.
  pairing = function(c)
    if #c:recommend { tag = "food" } == 0 then return "more" end
    return "offer_pairing"
  end,

  offer_pairing = {
    ask = function(c)
      local picks = c:recommend { tag = "food" }
      c:say("pairing", { product = picks[1].product.title, reason = picks[1].reason }, { cards = picks })
      local choices = {}
      for _, pick in ipairs(picks) do
        choices[#choices + 1] = { title = c:t("add_item", { product = pick.product.title }), payload = pick.product.sku }
      end
      choices[#choices + 1] = { title = c:t "no_thanks", payload = "no" }
      c:choices(choices)
    end,
    answer = function(c, msg)
      local said = msg.payload == nil and c:understand() or nil
      -- what was named goes in first ("no, a croissant"; "yes, and a latte")
      if said and #said.items > 0 then
        if said.yes then add_pick(c) end
        return c:call("drink", { words = msg.text }, "more")
      end
      if msg.payload == "no" or (said and (said.yes == false or said.without)) then
        c:say "no_problem"
        return "more"
      end
      -- "yes": the first pick (if the food has not all gone meanwhile)
      if said and said.yes then
        add_pick(c)
        return "more"
      end
      local food = c.catalog:get(msg.payload)
      if not food then
        c:say "didnt_catch"
        return "offer_pairing"
      end
      if not c.cart:add(food) then
        c:say("ran_out", { product = food.title })
        return "more"
      end
      c:say("added_food", { product = food.title })
      return "more"
    end,
  },

  more = {
    ask = function(c)
      c:say("anything_else", { count = c.cart:count(), total = c:price(c.cart:total()) }, {
        choices = {
          { title = c:t "another_drink", payload = "another" },
          { title = c:t "thats_all", payload = "done" },
        },
      })
    end,
    answer = function(c, msg)
      if msg.payload == "another" then return c:call("drink", nil, "pairing") end
      if msg.payload == "done" then return "summary" end
      local said = c:understand()
      -- the drink flow says what ran out; a pairing follows a drink
      if #said.items > 0 then return c:call("drink", { words = msg.text }, has_drink(said) and "pairing" or "more") end
      if said.yes == false then return "summary" end
      if said.yes then return c:call("drink", nil, "pairing") end
      c:say "didnt_catch"
      return "more"
    end,
  },

  summary = function(c)
    local lines = {}
    for _, line in ipairs(c.cart:lines()) do
      local options = #line.option_titles > 0 and (" (" .. table.concat(line.option_titles, ", ") .. ")") or ""
      lines[#lines + 1] = c:t("summary_line", {
        qty = line.qty, title = line.title, options = options, price = c:price(line.total, line.currency),
      })
    end
    local t = c.cart:totals()
    if t.discount > 0 then
      lines[#lines + 1] = c:t("discount_line", { code = t.code, amount = c:price(t.discount, t.currency) })
    end
    c:say("summary", { lines = table.concat(lines, "\n"), total = c:price(t.total, t.currency) })
    return "checkout"
  end,

  checkout = {
    ask = function(c)
      c:say("how_to_pay", nil, {
        choices = {
          { title = c:t "pay_now", payload = "pay" },
          { title = c:t "enter_code", payload = "code" },
          { title = c:t "another_drink", payload = "another" },
        },
      })
    end,
    answer = function(c, msg)
      if msg.payload == "pay" then return "pay" end
      if msg.payload == "code" then return "discount_code" end
      if msg.payload == "another" then return c:call("drink", nil, "pairing") end
      local said = c:understand()
      if said.code then return "apply_code" end
      if #said.items > 0 then return c:call("drink", { words = msg.text }, "summary") end
      if said.yes then return "pay" end
      c:say "didnt_catch"
      return "checkout"
    end,
  },

  -- a code typed where the payment is offered ("WELCOME10")
  apply_code = function(c) return apply_code(c, c:understand().code) end,

  discount_code = {
    intents = false, -- a code could be any word
    ask = function(c) c:say "which_code" end,
    answer = function(c, msg) return apply_code(c, msg.text or "") end,
  },

  pay = function(c)
    local order, why, short = c:checkout()
    if why == "out_of_stock" then
      -- sold out since it went into the cart: say which (the product, or
      -- one choice of it: "the Large Latte"), and carry on without it
      local title = short.option and (short.choice_title .. " " .. short.title) or short.title
      c:say("sold_out", { title = title })
      for i = #short.lines, 1, -1 do c.cart:remove(short.lines[i]) end
      if c.cart:is_empty() then return c:call("drink", nil, "pairing") end
      return "summary"
    end
    if not order then
      c:say(why == "discount_used" and "code_used" or "checkout_failed")
      return "checkout"
    end
    c:say("pay_here", { order = order.id, total = c:price(order.total, order.currency) },
      { link = { title = c:t("pay_button", { total = c:price(order.total, order.currency) }), url = order.payment_url } })
    return "await_payment"
  end,

  -- The payment provider's answer arrives here as msg.payment.
  await_payment = {
    answer = function(c, msg)
      local payment = msg.payment
      if not payment then
        c:say "still_waiting"
        return nil
      end
      if payment.status == "paid" then
        c:say("paid", { order = payment.order.id })
        return c:done()
      end
      c:say "declined"
      return "checkout"
    end,
  },
}
