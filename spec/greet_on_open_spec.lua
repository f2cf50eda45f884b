-- spec/greet_on_open_spec.lua: the default bot when the web chat panel
-- opens (webchat.greet_on_open): the greeting and the drinks, once per
-- conversation, never over a conversation the shopper has begun.
local testing = require "parley.testing"

describe("the barista, when the chat panel opens", function()
  it("greets a new shopper and offers the drinks, which work as if they had written", function()
    local chat = testing.conversation { channel = "webchat" }
    local said = chat:open()
    assert.truthy(said[1] and said[1].text and said[1].text:find "Bea", "the greeting")
    assert.equal(6, #chat:choices())
    assert.equal("drink.choose", chat:step())
    chat:tap "Latte"
    assert.equal("drink.size", chat:step())
  end)

  it("greets once: opening again (a reload, another tab) says nothing", function()
    local chat = testing.conversation { channel = "webchat" }
    chat:open()
    assert.same({}, chat:open())
    assert.equal("drink.choose", chat:step())
  end)

  it("says nothing to a shopper who has already written, even once their order is done", function()
    local chat = testing.conversation { channel = "webchat" }
    chat:send "hi"
    assert.same({}, chat:open())
    local done = testing.conversation { channel = "webchat" }
    done:send "hi"
    done:send "talk to a person"
    assert.same({}, done:open())
  end)
end)
