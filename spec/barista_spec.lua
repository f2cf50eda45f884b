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
    assert.is_nil(chat:step()) -- the conversation is over; the cart stays
    assert.equal(2, #chat:cart().lines)
  end)

  it("understands a drink and a size typed in one sentence", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "Could I have a LARGE café latte please?"
    assert.truthy(chat:says "Large Latte")
    assert.equal("main.offer_pairing", chat:step())
  end)

  it("taps a choice by its number", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "3"
    assert.equal("cappuccino", chat:slots().sku)
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
end)
