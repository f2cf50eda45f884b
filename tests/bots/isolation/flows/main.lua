-- flows/main.lua: a shop of one stocked product, to see that each spec
-- starts on a fresh bot (tests/bots/isolation/spec). Commands: "cup" adds
-- one to the cart, "pay" checks out, "remind" schedules a job an hour
-- away, "time" says parley's clock, "note TEXT" keeps TEXT in a slot,
-- "stock" says the cups left, "boom" fails the turn. A payment is
-- acknowledged.
local commands = {
  cup = function(c)
    local line, why = c.cart:add("cup")
    if not line then c:say_text("not added: " .. tostring(why)) return end
    c:say("added", { count = #c.cart:lines() })
  end,
  pay = function(c)
    local order, why = c:checkout()
    if not order then c:say_text("no order: " .. tostring(why)) return end
    c:say("pay", { order = order.id }, { link = { title = "Pay", url = order.payment_url } })
  end,
  remind = function(c)
    c:schedule("nudge", { after = 3600 })
    c:say "reminding"
  end,
  time = function(c) c:say_text(tostring(os.time())) end,
  stock = function(c) c:say_text("cups left: " .. tostring(c.catalog:get("cup").stock)) end,
  boom = function(c) error("boom on purpose") end,
}

return {
  start = function(c)
    c:say "hello"
    return "shop"
  end,

  shop = {
    answer = function(c, msg)
      if msg.payment then
        c:say(msg.payment.status == "paid" and "paid" or "unpaid")
        return "shop"
      end
      local text = msg.text or msg.payload or ""
      local note = text:match "^note (.+)$"
      if note then
        c.slots.note = note
        c:say_text("noted " .. note)
      elseif commands[text] then
        commands[text](c)
      else
        c:say_text("unknown: " .. text)
      end
      return "shop"
    end,
  },
}
