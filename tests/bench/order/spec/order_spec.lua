-- spec/order_spec.lua: the bench's order bot, run by `parley test
-- tests/bench/order` (and by `make test`). The first spec is the very
-- conversation tests/bench/order.lua sends, checked for what it checks.
local testing = require "parley.testing"

describe("the bench's order bot", function()
  it("takes an order in five messages: hi, name, drink, size, yes", function()
    local chat = testing.conversation()
    chat:send "hi"
    assert.truthy(chat:says "What's your name?")
    chat:send "Ana"
    assert.truthy(chat:says "Nice to meet you, Ana.")
    assert.same({ "Espresso · €2.40", "Latte · €3.30", "Tea · €2.20" }, chat:choices())
    chat:press "latte"
    assert.same({ "Small", "Large" }, chat:choices())
    chat:press "large"
    assert.truthy(chat:says "Large Latte: €4.20. Shall I place the order?")
    assert.same({ "Yes", "No" }, chat:choices())
    chat:press "yes"
    assert.equal("Order placed, Ana: Large Latte, total €4.20", chat:text())
    assert.same({}, testing.errors())
  end)

  it("takes typed answers too, and asks again what it did not understand", function()
    local chat = testing.conversation()
    chat:send "hello"
    chat:send "  "
    assert.truthy(chat:says "what's your name?")
    chat:send "Help"
    assert.truthy(chat:says "Nice to meet you, Help.")
    chat:send "a bicycle"
    assert.truthy(chat:says "which drink?")
    chat:send "tea"
    assert.equal("main.size", chat:step())
    chat:send "huge"
    assert.truthy(chat:says "Which size for the Tea?")
    chat:tap "Small"
    assert.truthy(chat:says "Small Tea: €2.20")
  end)

  it("starts the drink again on no", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "Bo"
    chat:tap "Espresso"
    chat:tap "Double"
    assert.truthy(chat:says "Double Espresso: €3.20")
    chat:tap "No"
    assert.truthy(chat:says "start again")
    assert.equal("main.drink", chat:step())
  end)
end)
