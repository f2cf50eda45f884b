-- spec/failing_spec.lua: every spec here fails on purpose; the messages
-- busted prints for them are what tests/spec_runtime/run.py checks (this
-- bot is not among those tests/run.sh runs as specs that must pass).
local testing = require "parley.testing"

describe("a failed turn", function()
  it("raises from chat:send", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "crash"
    assert.equal("never reached", chat:text())
  end)

  it("raises from chat:tap", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "menu"
    chat:tap "Explode"
  end)

  it("raises for a budget", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "loop"
  end)

  it("expected by chat:fails, but the turn answered", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:fails "all is well"
  end)
end)

describe("a turn meant to fail", function()
  it("passes with chat:fails and gives its error", function()
    local chat = testing.conversation()
    chat:send "hi"
    local err = chat:fails "crash"
    assert.matches("^flows/main.lua:18: attempt to index a nil value %(local 'order'%)$", err)
    assert.equal("Something broke.", chat:text())
    assert.equal(1, #testing.errors())
    chat:send "menu"
    assert.matches("flows/main.lua:24: ", chat:fails { tap = "Explode" })
  end)
end)

describe("testing.share()", function()
  it("is refused inside an it", function()
    testing.share()
  end)
end)

describe("the panel's opening", function()
  it("raises from chat:open when its turn failed", function()
    local chat = testing.conversation { channel = "webchat" }
    chat:open()
  end)

  it("passes with chat:fails{open = true} and gives its error", function()
    local chat = testing.conversation { channel = "webchat" }
    local err = chat:fails { open = true }
    assert.matches("^flows/main.lua:8: attempt to index a nil value %(local 'page'%)$", err)
    assert.equal(err, chat.failed)
    assert.equal(1, #testing.errors())
  end)
end)
