-- spec/isolation_spec.lua: every `it` starts on a fresh bot, and a block
-- that calls testing.share() keeps one bot for its `it`s — run by
-- `parley test tests/bots/isolation`. The `it`s of a block run in order
-- (busted's default; --shuffle would shuffle only the isolated ones' order,
-- which they do not depend on).
local testing = require "parley.testing"

-- one shopper per run of the file, so a leaked session would be found again
local SHOPPER = "the-same-shopper"

local function shopper() return testing.conversation { user = SHOPPER } end

local start_time -- parley's clock as the first spec saw it

describe("each it", function()
  it("changes everything a spec can change", function()
    local chat = shopper()
    chat:send "hi"
    start_time = tonumber((chat:send "time")[1].text)
    testing.stock("cup", 1)
    chat:send "note kept"
    chat:send "cup"
    assert.equal("1 in the cart.", chat:text())
    chat:send "pay"
    chat:pay()
    chat:send "remind"
    assert.equal(1, #chat:jobs())
    testing.advance(10 * 24 * 3600)
    local texts = chat:send "time"
    assert.is_true(tonumber(texts[#texts].text) >= start_time + 10 * 24 * 3600)
    chat:fails "boom"
    assert.equal(1, #testing.errors())
    chat:fails "boom"
  end)

  it("sees the defaults in the next one", function()
    local chat = shopper()
    assert.is_nil(chat:session())          -- no session
    assert.same({}, chat:transcript())     -- no transcript
    assert.same({}, chat:jobs())           -- no job
    assert.is_nil(testing.order(1))        -- no order
    assert.same({}, testing.errors())      -- nothing logged
    chat:send "hi"
    assert.equal("Hello.", chat:text())    -- a new conversation greets
    chat:send "stock"
    assert.equal("cups left: 5", chat:text()) -- the catalog's stock
    chat:send "time"
    local now = tonumber(chat:text())
    assert.is_true(now < start_time + 3600) -- the clock is back at now
    assert.same({}, chat:slots())          -- no note
    assert.same({}, chat:cart().lines)     -- an empty cart
    chat:send "cup"
    chat:send "pay"
    assert.equal("Order 1.", chat:text())  -- the first order of a fresh store
    assert.equal(200, chat:pay())
  end)
end)

describe("before_each", function()
  before_each(function() testing.stock("cup", 2) end)

  it("runs after the fresh start, so what it sets holds", function()
    local chat = shopper()
    chat:send "hi"
    chat:send "stock"
    assert.equal("cups left: 2", chat:text())
    testing.stock("cup", 0)
  end)

  it("sets it again for the next it", function()
    local chat = shopper()
    chat:send "hi"
    chat:send "stock"
    assert.equal("cups left: 2", chat:text())
  end)
end)

describe("a conversation made in the describe block", function()
  local chat = testing.conversation { user = "made-early" }

  it("talks, orders and is told of the payment", function()
    chat:send "hi"
    chat:send "cup"
    chat:send "pay"
    chat:pay()
    assert.equal("Paid, thanks.", chat:text())
    assert.equal(1, chat.order_id)
    chat:fails "boom"
  end)

  it("is the same shopper on the fresh bot, with nothing of the last it", function()
    assert.same({}, chat.replies)
    assert.is_nil(chat.failed)
    assert.is_nil(chat.order_id)
    assert.same({}, chat:pushed())
    local other = testing.conversation()
    other:send "hi"
    other:send "cup"
    other:send "pay" -- order 1 of the fresh store is another shopper's
    assert.is_nil(chat:last_order())
    chat:send "hi"
    assert.equal("Hello.", chat:text())
    chat:send "cup"
    chat:send "pay"
    chat:pay()
    assert.equal("Paid, thanks.", chat:pushed_text())
  end)
end)

describe("a shared block", function()
  testing.share()
  local chat

  setup(function()
    chat = shopper()
    chat:send "hi"
  end)

  it("keeps what its setup made", function()
    assert.equal("main.shop", chat:step())
    chat:send "note shared"
    chat:send "cup"
  end)

  it("keeps what the it before left", function()
    assert.equal("shared", chat:slots().note)
    assert.equal(1, #chat:cart().lines)
  end)

  describe("inside it", function()
    it("shares too", function()
      assert.equal("shared", chat:slots().note)
    end)
  end)

  it("can still start afresh with testing.reset()", function()
    testing.reset()
    assert.is_nil(chat:session())
  end)
end)

describe("after a shared block", function()
  it("starts afresh again", function()
    assert.is_nil(shopper():session())
  end)
end)
