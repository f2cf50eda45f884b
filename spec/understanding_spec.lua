-- spec/understanding_spec.lua: the barista understands what shoppers type
-- (c:understand): several items in one message, typos, quantities, milk
-- and sizes, yes and no, codes and the router's intents by example, in
-- English and in Japanese.
local testing = require "parley.testing"

-- The cart's lines as "qty sku size milk" strings, in order.
local function lines(chat)
  local out = {}
  for _, line in ipairs(chat:cart().lines) do
    local o = line.options or {}
    out[#out + 1] = table.concat({ line.qty, line.sku, o.size or "-", o.milk or "-" }, " ")
  end
  return out
end

describe("the barista understands typing", function()
  it("takes two large oat lattes and a croissant in the first message", function()
    local chat = testing.conversation()
    chat:send "two large oat lattes and a croissant"
    assert.same({ "2 latte large oat", "1 croissant - -" }, lines(chat))
    assert.truthy(chat:says "2 × Large Latte with Oat milk")
    -- nothing left to ask: the pairing comes next
    assert.equal("main.offer_pairing", chat:step())
  end)

  it("asks only for what is missing, item by item", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "a capuccino and 2 flat whites with soy milk pls"
    assert.equal("drink.size", chat:step())
    assert.truthy(chat:says "Cappuccino")
    chat:send "large"
    assert.equal("drink.size", chat:step())
    assert.truthy(chat:says "Flat White")
    chat:tap "Small"
    assert.same({ "1 cappuccino large -", "2 flat_white small soy" }, lines(chat))
  end)

  it("forgives typos in products and sizes", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "lrage expresso"
    assert.equal("drink.size", chat:step()) -- espresso comes single or double
    chat:send "doubel"
    assert.same({ "1 espresso double -" }, lines(chat))
  end)

  it("takes more with a typed order, and a typed no ends it", function()
    local chat = testing.conversation()
    chat:send "a small latte"
    chat:send "no thanks"
    assert.equal("main.more", chat:step())
    chat:send "and a banana bred and 2 biscotti"
    assert.same({ "1 latte small -", "1 banana_bread - -", "2 almond_biscotti - -" }, lines(chat))
    chat:send "nope, that's it"
    assert.truthy(chat:says "Here's your order")
    assert.equal("main.checkout", chat:step())
  end)

  it("says yes to the pairing it offered", function()
    local chat = testing.conversation()
    chat:send "a double espresso"
    local pick = chat:cards()[1].sku
    chat:send "yes please"
    assert.same({ "1 espresso double -", "1 " .. pick .. " - -" }, lines(chat))
  end)

  it("takes what is named with a no or a yes to the pairing", function()
    local chat = testing.conversation()
    chat:send "a large latte"
    chat:send "no, a banana bread"
    assert.same({ "1 latte large -", "1 banana_bread - -" }, lines(chat))
    assert.equal("main.more", chat:step())
  end)

  it("says yes to a pairing whose food has all gone without failing", function()
    local chat = testing.conversation()
    chat:send "a large latte"
    for _, sku in ipairs { "croissant", "pain_au_chocolat", "almond_biscotti", "banana_bread", "matcha_cookie" } do
      testing.stock(sku, 0)
    end
    chat:send "yes please"
    assert.is_nil(chat.failed)
    assert.same({ "1 latte large -" }, lines(chat))
    assert.equal("main.more", chat:step())
  end)

  it("goes on when the last thing named has sold out", function()
    local chat = testing.conversation()
    chat:send "a large latte and a cinnamon roll" -- (none left today)
    assert.truthy(chat:says "run out of Cinnamon Roll")
    assert.same({ "1 latte large -" }, lines(chat))
    assert.equal("main.offer_pairing", chat:step())
  end)

  it("applies a code typed where it offers the payment", function()
    local chat = testing.conversation()
    chat:send "2 large lattes"
    chat:send "no"
    chat:send "that's all"
    assert.equal("main.checkout", chat:step())
    chat:send "welcome10"
    assert.truthy(chat:says "Code applied")
  end)

  it("reaches an intent by example, with typos", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "wher is my ordr"
    assert.truthy(chat:says "You haven't ordered anything yet")
    assert.equal("drink.choose", chat:step())
  end)

  it("understands Japanese: ラテを2つとクロワッサン", function()
    local chat = testing.conversation { locale = "ja" }
    chat:send "オーツミルクのラテLを2つとクロワッサン"
    assert.same({ "2 latte large oat", "1 croissant - -" }, lines(chat))
    chat:send "いいえ"
    assert.equal("main.more", chat:step())
    chat:send "抹茶ラテ M 一つ"
    assert.same({ "2 latte large oat", "1 croissant - -", "1 matcha_latte medium -" }, lines(chat))
  end)

  it("asks the size in Japanese and reads a typed one", function()
    local chat = testing.conversation { locale = "ja" }
    chat:send "こんにちは"
    chat:send "カプチーノを3つ"
    assert.equal("drink.size", chat:step())
    chat:send "Lサイズで"
    assert.same({ "3 cappuccino large -" }, lines(chat))
  end)

  it("reaches an intent by a Japanese example", function()
    local chat = testing.conversation { locale = "ja" }
    chat:send "こんにちは"
    chat:send "注文はどうなっていますか"
    assert.equal("drink.choose", chat:step())
    assert.truthy(chat:says "まだ" or chat:says "注文")
  end)
end)

describe("testing.understand on the barista's words", function()
  local cases = {
    { "two large oat lattes and a croissant", nil,
      { items = { { sku = "latte", qty = 2, options = { size = "large", milk = "oat" } }, { sku = "croissant", qty = 1 } } } },
    { "capuccino pls", nil, { items = { { sku = "cappuccino", qty = 1 } } } },
    { "a couple of expresso", nil, { items = { { sku = "espresso", qty = 2 } } } },
    { "latte x3", nil, { items = { { sku = "latte", qty = 3 } } } },
    { "a latte with no milk", nil, { items = { { sku = "latte", qty = 1, without = { milk = true } } } } },
    { "the second one", nil, { number = 2 } },
    { "2", nil, { number = 2 } },
    { "yeah sure", nil, { yes = true } },
    { "welcome10", nil, { code = "WELCOME10" } },
    { "where's my order?", nil, { intent = "order_status" } },
    { "a unicorn frappuccino", nil, {} },
    { "one second", nil, {} },
    { "a latte for table 12", nil, { items = { { sku = "latte", qty = 1 } } } },
    { "a flat white in 10 minutes", nil, { items = { { sku = "flat_white", qty = 1 } } } },
    -- a message that merely holds an example ("forget it") is not that intent
    { "forget it, a latte", nil, { items = { { sku = "latte", qty = 1 } } } },
    { "not sure", nil, {} },
    { "ラテを2つ", "ja", { items = { { sku = "latte", qty = 2 } } } },
    { "はい", "ja", { yes = true } },
    { "2番目", "ja", { number = 2 } },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      local got = testing.understand(case[1], case[2])
      local want = case[3]
      assert.equal(want.intent, got.intent)
      assert.equal(want.yes, got.yes)
      assert.equal(want.number, got.number)
      assert.equal(want.code, got.code)
      local items = {}
      for i, item in ipairs(got.items) do
        items[i] = { sku = item.sku, qty = item.qty, options = item.options, without = item.without }
      end
      assert.same(want.items or {}, items)
    end)
  end
end)
