-- spec/analytics_spec.lua: the events the barista's conversations record
-- for the shop's figures (docs/analytics.md), committed with each turn.
local testing = require "parley.testing"

-- The names of the events, without the ones every turn has.
local function notable(chat)
  local out = {}
  for _, name in ipairs(chat:event_names()) do
    if name ~= "message" and name ~= "reply" and name ~= "step" then out[#out + 1] = name end
  end
  return out
end

local function to_checkout(chat)
  chat:send "hi"
  chat:send "a large latte"
  chat:tap "Add Butter Croissant"
  chat:tap "That's all"
  chat:tap "Pay now"
  return chat
end

describe("analytics events", function()
  it("follow a whole order: shown, chosen, added, recommended, checkout and paid", function()
    local chat = to_checkout(testing.conversation())
    assert.equal(200, (chat:pay()))
    assert.same({ "conversation_started", "product_shown", "cart_add", "product_shown", "product_chosen",
                  "cart_add", "checkout_started", "payment_paid" }, notable(chat))
    local order = chat:last_order()
    assert.same({ order = order.id, total = 720, currency = "EUR" }, chat:events("payment_paid")[1].props)
    assert.same({ order = order.id, total = 720, currency = "EUR" }, chat:events("checkout_started")[1].props)
    -- the croissant was recommended with the coffee, and taken
    local adds = chat:events("cart_add")
    assert.same({ sku = "latte", qty = 1 }, adds[1].props)
    assert.same({ sku = "croissant", qty = 1, recommended = true }, adds[2].props)
    assert.is_true(chat:events("product_shown")[2].props.recommended)
    -- the conversation waited at each step of the flow, in order, and once
    -- paid at none (its flows ended: "")
    local steps = {}
    for _, e in ipairs(chat:events("step")) do steps[#steps + 1] = e.props.step end
    assert.same({ "drink.choose", "main.offer_pairing", "main.more", "main.checkout", "main.await_payment", "" },
      steps)
  end)

  it("record a declined payment, and no paid one", function()
    local chat = to_checkout(testing.conversation())
    chat:decline()
    assert.equal(1, #chat:events("payment_failed"))
    assert.equal(0, #chat:events("payment_paid"))
  end)

  it("record the reminder and the cart it recovered once the shopper paid", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "a small latte"
    chat:tap "No thanks"
    testing.advance(61 * 60)
    assert.same({ kind = "cart", code = "COMEBACK" }, chat:events("reminder_sent")[1].props)
    chat:send "that's all"
    chat:tap "Pay now"
    chat:pay()
    local recovered = chat:events("cart_recovered")
    assert.equal(1, #recovered)
    assert.equal(chat:last_order().total, recovered[1].props.total)
    -- answering the reminder went on with the conversation it was about
    assert.equal(1, #chat:events("conversation_started"))
  end)

  it("record the handoff: asked, claimed with the wait, closed with its length", function()
    local chat = testing.conversation { channel = "webchat" }
    chat:send "hi"
    chat:send "can I talk to a person?"
    assert.same({ reason = "asked for a person" }, chat:events("handoff_requested")[1].props)
    testing.advance(90)
    chat:agent("claim", { agent = "Mia" })
    chat:agent("claim", { agent = "Leo" }) -- too late: counted once
    testing.advance(300)
    chat:agent("close", { agent = "Mia" })
    local claimed = chat:events("handoff_claimed")
    assert.equal(1, #claimed)
    assert.equal(90, claimed[1].props.wait_s)
    assert.same({ how = "close", duration_s = 390 }, chat:events("handoff_closed")[1].props)
  end)

  it("record what the bot did not understand, folded, and the bot's own events", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "Do you have KOMBUCHA?"
    local nu = chat:events("not_understood")
    assert.equal(1, #nu)
    assert.equal("do you have kombucha", nu[1].props.text)
    chat:send "help"
    assert.equal(1, #chat:events("help_asked"))
  end)
end)
