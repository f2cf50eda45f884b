-- spec/barista_spec.lua: the default bot's conversations, run by
-- `parley test` through the real engine, sandbox and store.
local testing = require "parley.testing"

describe("the barista", function()
  it("greets and offers the drinks in stock, with prices", function()
    local chat = testing.conversation()
    chat:send "hi"
    assert.truthy(chat:says "Bea")
    local choices = chat:choices()
    assert.same("Espresso · €2.40", choices[1])
    assert.equal(6, #choices)
    assert.equal("drink.choose", chat:step())
  end)

  it("thanks an Instagram shopper who mentioned the shop in their story, then greets", function()
    local chat = testing.conversation {
      channel = "instagram",
      info = { platform = "instagram", story = { kind = "mention", url = "https://cdn.example/s.mp4" } },
    }
    chat:post {}
    assert.truthy(chat:says "Thanks for sharing us in your story")
    assert.truthy(chat:says "Bea")
    assert.equal("drink.choose", chat:step())
  end)

  it("takes a whole order: drink, size, pairing, summary and total", function()
    local chat = testing.conversation()
    chat:send "hello"
    chat:tap "Latte"
    assert.equal("drink.size", chat:step())
    chat:tap "Large"
    assert.truthy(chat:says "Large Latte")
    -- the rules pair a croissant with a coffee, and say why
    local cards = chat:cards()
    assert.equal("croissant", cards[1].sku)
    assert.same({ amount = 250, currency = "EUR" }, cards[1].price)
    assert.truthy(chat:says "a classic with coffee")
    chat:tap "Add Butter Croissant"
    assert.truthy(chat:says "€7.20")
    chat:tap "That's all"
    assert.truthy(chat:says "1 × Latte (Large) — €4.70")
    assert.truthy(chat:says "1 × Butter Croissant — €2.50")
    assert.truthy(chat:says "Total: €7.20")
    assert.equal("main.checkout", chat:step()) -- next: paying
    assert.equal(2, #chat:cart().lines)
  end)

  it("understands a drink and a size typed in one sentence", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "Could I have a LARGE café latte please?"
    assert.truthy(chat:says "Large Latte")
    assert.equal("main.offer_pairing", chat:step())
  end)

  it("takes a tapped drink whose message also carries bytes that are not UTF-8", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:post({ payload = "latte", text = "large \255" })
    assert.equal("drink.size", chat:step()) -- no size read from such words: it asks
    chat:tap "Large"
    assert.truthy(chat:says "Large Latte")
  end)

  it("taps a choice by its number", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "3"
    assert.equal("drink.size", chat:step())
    assert.truthy(chat:says "Cappuccino")
  end)

  it("answers help at any step and asks the same question again", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:tap "Flat White"
    chat:send "help"
    assert.truthy(chat:says "I can take your coffee order")
    assert.truthy(chat:says "Flat White")
    assert.equal("drink.size", chat:step())
    chat:tap "Small"
    assert.truthy(chat:says "Small Flat White")
  end)

  it("cancels at any point: the cart is emptied and it starts over", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:tap "Latte"
    chat:tap "Small"
    chat:send "cancel"
    assert.truthy(chat:says "cleared your order")
    assert.equal(0, #chat:cart().lines)
    assert.equal("drink.choose", chat:step())
  end)

  it("shows the cart on request and resumes", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:tap "Espresso"
    chat:tap "Double"
    chat:send "what's in my cart?"
    assert.truthy(chat:says "1 × Espresso (Double) — €3.20")
    assert.equal("main.offer_pairing", chat:step())
  end)

  it("recommends biscotti with an espresso and matcha sweets with matcha", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "a double espresso"
    assert.equal("almond_biscotti", chat:cards()[1].sku)
    local tea = testing.conversation()
    tea:send "hi"
    tea:send "small matcha latte"
    assert.equal("matcha_cookie", tea:cards()[1].sku)
  end)

  it("never offers what is sold out", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "latte small"
    for _, card in ipairs(chat:cards()) do assert.are_not.equal("cinnamon_roll", card.sku) end
  end)

  it("asks again when it does not understand", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "a unicorn frappuccino"
    assert.truthy(chat:says "didn't catch which drink")
    assert.equal("drink.choose", chat:step())
  end)

  it("speaks Japanese, with Japanese product names", function()
    local chat = testing.conversation { locale = "ja" }
    chat:send "こんにちは"
    assert.truthy(chat:says "バリスタ" or chat:says "お飲み物")
    assert.truthy(chat:choices()[2]:find("カフェラテ", 1, true))
    chat:send "カフェラテをLサイズで"
    assert.truthy(chat:says "カフェラテ（L）")
    chat:tap "いいえ、結構です"
    chat:tap "以上です"
    assert.truthy(chat:says "合計：€4.70")
    assert.equal("ja", chat:session().locale)
  end)

  it("keeps the cart across a second drink", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "small latte"
    chat:tap "No thanks"
    chat:tap "Another drink"
    chat:send "hot chocolate large"
    assert.truthy(chat:says "Large Hot Chocolate")
    assert.equal("pain_au_chocolat", chat:cards()[1].sku)
    chat:tap "No thanks"
    chat:tap "That's all"
    assert.truthy(chat:says "Total: €8.10")
  end)

  describe("checkout", function()
    -- a shopper with a large latte and a croissant in the cart, at the payment question
    local function at_checkout(opts)
      local chat = testing.conversation(opts)
      chat:send "hi"
      chat:send "a large latte"
      chat:tap "Add Butter Croissant"
      chat:tap "That's all"
      return chat
    end

    it("takes the payment: a link to pay, then the thank-you; the cart is emptied", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      local reply = chat.replies[1]
      assert.truthy(reply.link)
      assert.equal("Pay €7.20", reply.link.title)
      assert.matches("/v1/bots/barista/payments/test/%d+%?token=%x+$", reply.link.url)
      assert.equal("main.await_payment", chat:step())
      local order = chat:last_order()
      assert.equal("pending", order.state)
      assert.same({ 720, 0, 720, "EUR" }, { order.subtotal, order.discount, order.total, order.currency })
      assert.equal(2, #order.lines)
      assert.equal(200, (chat:pay()))
      assert.equal("paid", chat:last_order().state)
      assert.matches("Order #" .. order.id .. " is", chat:pushed_text())
      assert.equal(0, #chat:cart().lines)
      assert.is_nil(chat:step())
    end)

    it("answers 'where is my order?' after paying, and does not greet again", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      local order = chat:last_order()
      chat:pay()
      assert.is_nil(chat:step()) -- the main flow has finished
      chat:send "where is my order?"
      local texts = chat:texts() -- (the thank-you first: the HTTP API cannot push it)
      assert.equal("Order #" .. order.id .. " (€7.20): paid and being prepared.", texts[#texts])
      assert.falsy(chat:says "Bea")
      assert.equal(0, #chat:offered())
      assert.is_nil(chat:step())
      chat:send "help" -- another intent that resumes: still no greeting
      assert.truthy(chat:says "I can take your coffee order")
      assert.falsy(chat:says "Bea")
      assert.equal(0, #chat:offered())
      chat:send "hi" -- what the shopper writes next begins a new order
      assert.truthy(chat:says "Bea")
      assert.equal("drink.choose", chat:step())
    end)

    it("waits politely when the shopper writes before paying", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      chat:send "hello?"
      assert.truthy(chat:says "still waiting for your payment")
      assert.equal("main.await_payment", chat:step())
    end)

    it("offers to try again when the payment is declined", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      chat:decline()
      assert.truthy(chat:pushed_text():find("didn't go through", 1, true))
      assert.equal("failed", chat:last_order().state)
      assert.equal("main.checkout", chat:step())
      assert.equal(2, #chat:cart().lines) -- nothing lost: pay again
      chat:tap "Pay now"
      chat:pay()
      assert.equal("paid", chat:last_order().state)
    end)

    it("takes the money when the shopper pays on the same page after a decline", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      local order = chat:last_order()
      chat:decline()
      assert.equal(200, (chat:pay(order.id))) -- a second card on the provider's page
      assert.equal("paid", testing.order(order.id).state)
      assert.truthy(chat:pushed_text():find("is paid", 1, true))
      assert.equal(0, #chat:cart().lines)
    end)

    it("applies a duplicated confirmation once: paid once, one thank-you", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      chat:pay()
      local thanks = chat:pushed_text()
      assert.truthy(thanks:find("Payment received", 1, true) or thanks:find("All paid", 1, true))
      assert.equal(200, (chat:pay()))
      assert.equal("", chat:pushed_text())
      local outs = 0
      for _, line in ipairs(chat:transcript()) do
        if line.direction == "out" then
          for _, r in ipairs(line.body) do
            if r.text and (r.text:find("Payment received", 1, true) or r.text:find("All paid", 1, true)) then outs = outs + 1 end
          end
        end
      end
      assert.equal(1, outs)
    end)

    it("rejects a confirmation whose amount differs, and the order stays unpaid", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      local status, problems = chat:confirm("paid", nil, 1, "EUR")
      assert.equal(400, status)
      assert.matches("does not match", problems)
      assert.equal("pending", chat:last_order().state)
      assert.equal("", chat:pushed_text())
    end)

    it("tells a shopper who moved on that the order is paid", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      chat:send "cancel"
      chat:pay()
      assert.truthy(chat:pushed_text():find("is paid", 1, true))
      assert.equal("paid", chat:last_order().state)
    end)

    it("takes a discount code and shows it in the summary; once per shopper", function()
      local chat = at_checkout()
      chat:tap "I have a code"
      chat:send "welcome10"
      assert.truthy(chat:says "new total is €6.48")
      assert.truthy(chat:says "Code WELCOME10: −€0.72")
      chat:tap "Pay now"
      assert.same({ 720, 72, 648 }, { chat:last_order().subtotal, chat:last_order().discount, chat:last_order().total })
      chat:pay()
      chat:send "hi"
      chat:send "a large latte"
      chat:tap "Add Butter Croissant"
      chat:tap "That's all"
      chat:tap "I have a code"
      chat:send "WELCOME10"
      assert.truthy(chat:says "already used that code")
    end)

    it("refuses unknown codes and codes for bigger orders", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "single espresso"
      chat:tap "No thanks"
      chat:tap "That's all"
      chat:tap "I have a code"
      chat:send "FREECOFFEE"
      assert.truthy(chat:says "don't know that code")
      chat:tap "I have a code"
      chat:send "WELCOME10"
      assert.truthy(chat:says "bigger order")
    end)

    it("answers where the order is, from the store", function()
      local chat = at_checkout()
      chat:send "where is my order?"
      assert.truthy(chat:says "haven't ordered anything yet")
      chat:tap "Pay now"
      chat:pay()
      chat:send "where is my order?"
      assert.truthy(chat:says "paid and being prepared")
      local id = chat:last_order().id
      assert.equal(200, testing.update_order(id, "shipped", "https://track.example/123"))
      chat:send "where is my order?"
      assert.truthy(chat:says "on its way")
    end)

    it("tells each fulfilment news once, a corrected tracking link too, and nothing for an unpaid order", function()
      local chat = at_checkout()
      chat:tap "Pay now"
      local id = chat:last_order().id
      assert.equal(409, testing.update_order(id, "shipped")) -- not paid: nothing to ship
      chat:pay()
      chat:watch()
      assert.equal(200, testing.update_order(id, "shipped", "https://track.example/1"))
      assert.equal(200, testing.update_order(id, "shipped", "https://track.example/1")) -- the merchant retried
      assert.equal(1, #chat:pushed())
      chat:watch()
      assert.equal(200, testing.update_order(id, "shipped", "https://track.example/2"))
      assert.truthy(chat:pushed_text():find("https://track.example/2", 1, true))
    end)

    it("pays in Japanese, with a Japanese thank-you", function()
      local chat = testing.conversation { locale = "ja" }
      chat:send "こんにちは"
      chat:send "カフェラテをLサイズで"
      chat:tap "いいえ、結構です"
      chat:tap "以上です"
      chat:tap "支払う"
      assert.equal("€4.70 を支払う", chat.replies[1].link.title)
      chat:pay()
      assert.truthy(chat:pushed_text():find("お支払いありがとうございます", 1, true))
    end)
  end)

  describe("sold out", function()
    it("says a drink ran out rather than giving the shopper another one", function()
      testing.stock("latte", 0)
      local chat = testing.conversation()
      chat:send "hi"
      local offered = table.concat(chat:choices(), "|")
      assert.truthy(offered:find("Matcha Latte", 1, true))
      assert.falsy(offered:find("|Latte", 1, true) or offered:find("^Latte")) -- not offered
      chat:send "a small latte"
      assert.truthy(chat:says "run out of Latte")
      assert.equal("drink.choose", chat:step())
      assert.equal(0, #chat:cart().lines)
    end)

    it("takes a line out at checkout when its drink sold out meanwhile, and goes on with the rest", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "a large latte"
      chat:tap "Add Butter Croissant"
      chat:tap "That's all"
      testing.stock("latte", 0)
      chat:tap "Pay now"
      assert.truthy(chat:says "the Latte has just sold out")
      assert.truthy(chat:says "Total: €2.50")
      assert.equal(1, #chat:cart().lines)
      chat:tap "Pay now"
      assert.truthy(chat.replies[1].link)
    end)
  end)

  describe("abandoned cart", function()
    local function to_checkout(chat, ...)
      chat:send "hi"
      chat:send "a large latte"
      chat:tap "Add Butter Croissant"
      chat:tap "That's all"
      for _, step in ipairs { ... } do chat:tap(step) end
      return chat
    end

    it("reminds a shopper whose payment was declined and who went quiet", function()
      local chat = to_checkout(testing.conversation(), "Pay now")
      chat:decline()
      chat:watch()
      testing.advance(61 * 60)
      assert.truthy(chat:pushed_text():find("You left 2 item(s) in your cart (€6.20 with code COMEBACK)", 1, true))
    end)

    it("sends the same payment link again when a checkout was left unpaid", function()
      local chat = to_checkout(testing.conversation(), "Pay now")
      local order = chat:last_order()
      chat:watch()
      testing.advance(61 * 60)
      local told = chat:pushed()
      assert.truthy(told[1].text:find("order #" .. order.id .. " (€7.20) is still waiting", 1, true))
      assert.equal(order.payment_url, told[1].link.url)
      chat:pay()
      assert.equal("paid", chat:last_order().state)
    end)

    it("keeps the shopper's own code when it is worth more than the comeback code", function()
      local chat = to_checkout(testing.conversation(), "Another drink")
      chat:send "a large latte"
      chat:tap "No thanks"
      chat:tap "That's all"
      chat:tap "I have a code"
      chat:send "WELCOME10"
      assert.truthy(chat:says "€10.71") -- 11.90 less 10%: more than the comeback euro
      chat:watch()
      testing.advance(61 * 60)
      assert.truthy(chat:pushed_text():find("You left 3 item(s) in your cart (€10.71).", 1, true))
      assert.equal("WELCOME10", chat:cart().code)
    end)

    it("does not offer a comeback code the shopper has already used", function()
      local chat = to_checkout(testing.conversation(), "I have a code")
      chat:send "COMEBACK"
      chat:tap "Pay now"
      chat:pay()
      chat:send "hi"
      chat:send "a small latte"
      chat:tap "No thanks"
      chat:watch()
      testing.advance(61 * 60)
      assert.truthy(chat:pushed_text():find("You left 1 item(s) in your cart (€3.80).", 1, true))
    end)

    it("never reminds while a person has the conversation", function()
      local chat = testing.conversation { channel = "webchat" }
      chat:send "hi"
      chat:send "a small latte"
      chat:send "talk to a person"
      chat:watch()
      testing.advance(2 * 3600)
      assert.equal("", chat:pushed_text())
      assert.equal(0, #chat:jobs())
    end)

    it("reminds once, an hour after the shopper went quiet, with the comeback code", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "a small latte"
      chat:tap "No thanks"
      assert.equal("abandoned_cart", chat:jobs()[1].name)
      chat:watch()
      testing.advance(30 * 60)
      assert.equal("", chat:pushed_text())
      testing.advance(31 * 60)
      assert.truthy(chat:pushed_text():find("You left 1 item(s) in your cart (€2.80 with code COMEBACK)", 1, true))
      chat:watch()
      testing.advance(3 * 3600)
      assert.equal("", chat:pushed_text())
      assert.equal(0, #chat:jobs())
    end)

    it("starts counting again when the shopper comes back, and stops once they pay", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "a small latte"
      chat:watch()
      testing.advance(50 * 60)
      chat:tap "No thanks" -- back after 50 minutes: the hour starts again
      chat:watch()
      testing.advance(50 * 60)
      assert.equal("", chat:pushed_text())
      chat:tap "That's all"
      chat:tap "Pay now"
      chat:pay()
      chat:watch()
      testing.advance(2 * 3600)
      assert.equal("", chat:pushed_text())
      assert.equal(0, #chat:jobs())
    end)
  end)

  describe("handing over to a person", function()
    it("stops answering once the shopper asks for a person, and lists the reason", function()
      local chat = testing.conversation { channel = "webchat" }
      chat:send "hi"
      chat:send "can I talk to a person?"
      assert.truthy(chat:says "getting one of our team")
      assert.same({ state = "waiting", reason = "asked for a person" },
        { state = chat:handoff().state, reason = chat:handoff().reason })
      chat:send "hello? anyone?"
      assert.same({}, chat:texts()) -- the bot keeps quiet while a person is coming
    end)

    it("lets the first agent who claims have the conversation, and speaks their words as written", function()
      local chat = testing.conversation { channel = "webchat" }
      chat:send "hi"
      chat:send "a human please"
      local told = chat:agent("claim", { agent = "Mia" })
      assert.equal("Mia from our team is here to help.", told[1].text)
      assert.equal("active", chat:handoff().state)
      assert.same({}, chat:agent("claim", { agent = "Leo" })) -- too late: Mia has it
      assert.equal("Mia", chat:handoff().agent)
      told = chat:agent("reply", { agent = "Mia", text = "Hi! {not a template} How can I help?" })
      assert.same({ text = "Hi! {not a template} How can I help?", agent = { name = "Mia" } }, told[1])
    end)

    it("hands back to the step the agent picks, and the bot answers again", function()
      local chat = testing.conversation { channel = "webchat" }
      chat:send "hi"
      chat:send "talk to a person"
      chat:agent("claim", { agent = "Mia" })
      local told = chat:agent("handback", { agent = "Mia", flow = "drink", step = "choose" })
      assert.equal(nil, chat:handoff())
      assert.equal("drink.choose", chat:step())
      assert.truthy(#told > 0) -- the step asks its question again
      chat:send "latte"
      assert.equal("drink.size", chat:step())
      assert.same({}, testing.errors())
    end)

    it("closes: the conversation starts over on the next message", function()
      local chat = testing.conversation { channel = "webchat" }
      chat:send "hi"
      chat:send "a latte"
      chat:send "agent"
      local told = chat:agent("close", { agent = "Mia" })
      assert.truthy(told[1].text:find("Thanks for chatting", 1, true))
      assert.equal(nil, chat:handoff())
      chat:send "help" -- an intent on the closed conversation: no greeting
      assert.truthy(chat:says "I can take your coffee order")
      assert.falsy(chat:says "Bea")
      assert.is_nil(chat:step())
      chat:send "hello"
      assert.truthy(chat:says "Bea")
    end)

    it("hands a finished conversation back without greeting again: the bot has no 'resume' step, so it stays quiet", function()
      local chat = testing.conversation { channel = "webchat" }
      chat:send "hi"
      chat:send "agent"
      chat:agent("close", { agent = "Mia" }) -- the conversation has ended
      chat:send "a person please"            -- no step waits: the intent hands off again
      chat:agent("claim", { agent = "Leo" })
      assert.same({}, chat:agent("handback", { agent = "Leo" }))
      assert.is_nil(chat:step())
      assert.is_true(chat:session().ended)
      chat:send "hello" -- the shopper's next message begins again
      assert.truthy(chat:says "Bea")
    end)

    it("keeps what was said for a channel that cannot push, until the shopper writes", function()
      local chat = testing.conversation() -- the REST API answers only when asked
      chat:send "hi"
      chat:send "a person"
      chat:agent("claim", { agent = "Mia" })
      chat:agent("reply", { agent = "Mia", text = "Hello from Mia" })
      chat:send "hi Mia"
      assert.same({ "Mia from our team is here to help.", "Hello from Mia" }, chat:texts())
      local recorded = 0 -- in the transcript once, though the shopper got it with a later answer
      for _, line in ipairs(chat:transcript()) do
        if line.direction == "out" then
          for _, reply in ipairs(line.body) do
            if reply.text == "Hello from Mia" then recorded = recorded + 1 end
          end
        end
      end
      assert.equal(1, recorded)
    end)
  end)

  describe("a page visit", function()
    it("greets a shopper who has not started, once, and never interrupts a conversation", function()
      local chat = testing.conversation { channel = "webchat" }
      local told = chat:visit { url = "https://shop.example/checkout", title = "Checkout" }
      assert.equal(1, #told)
      assert.truthy(told[1].text:find("Bea", 1, true) or told[1].text:find("coffee", 1, true))
      assert.same({}, chat:visit { url = "https://shop.example/menu", title = "Menu" }) -- once
      chat:send "hi"
      testing.advance(25 * 3600)
      assert.same({}, chat:visit { url = "https://shop.example/menu", title = "Menu" }) -- mid-conversation
    end)

    it("greets again the next day", function()
      local chat = testing.conversation { channel = "webchat" }
      assert.equal(1, #chat:visit { url = "https://shop.example/", title = "Home" })
      testing.advance(25 * 3600)
      assert.equal(1, #chat:visit { url = "https://shop.example/", title = "Home" })
    end)
  end)
end)
