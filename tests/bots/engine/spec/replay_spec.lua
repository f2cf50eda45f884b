-- spec/replay_spec.lua: parley.replay (`parley replay`) in the spec runtime —
-- a conversation of this bot, taken from its transcript, replays with no
-- difference; a changed expectation is reported by turn and field.
local testing = require "parley.testing"
local replay = require "parley.replay"

-- The replay document of chat's conversation, from its transcript (as
-- `parley replay --from DB` makes it, steps left out).
local function recorded(chat)
  local doc = { parley = replay.FORMAT, bot = "engine", channel = chat.channel, user = chat.user, turns = {} }
  local lines = chat:transcript()
  for i, line in ipairs(lines) do
    local out = lines[i + 1]
    if line.direction == "in" and out and out.direction == "out" then
      doc.turns[#doc.turns + 1] = { at = line.at, send = line.body, replies = out.body }
    end
  end
  return doc
end

describe("parley.replay", function()
  -- (users of their own: another spec file's testing.conversation() counts
  -- its shoppers from 1 again)
  it("replays a recorded conversation with no difference, and leaves no session behind", function()
    local chat = testing.conversation { user = "replay-spec-1" }
    chat:send "hello"
    chat:tap "Count to something"
    chat:send "42"
    local doc = recorded(chat)
    assert.equal(3, #doc.turns)
    chat:reset()
    local result = replay.run(doc)
    assert.equal(0, result.differing)
    assert.same({ "spec: 3 turns, no difference" }, replay.report("spec", result))
    assert.equal("main.menu", result.doc.turns[3].step)
    assert.is_nil(chat:session())
  end)

  it("reports a changed text and step by turn, and a reply that is gone", function()
    local chat = testing.conversation { user = "replay-spec-2" }
    chat:send "hello"
    chat:tap "Count to something"
    local doc = recorded(chat)
    chat:reset()
    doc.turns[2].step = "main.menu"
    doc.turns[2].replies[1].text = "Give me a number up to 10."
    doc.turns[2].replies[2] = { text = "one more" }
    local result = replay.run(doc)
    assert.equal(1, result.differing)
    local report = table.concat(replay.report("spec", result), "\n")
    assert.matches("spec: 1 of 2 turns differ", report, 1, true)
    assert.matches('turn 2, shopper [count]\n    step:\n      - main.menu\n      + ask_number.start', report, 1, true)
    assert.matches('reply 1 text:\n      - "Give me a number up to 10."\n      + "Give me a number up to 100."',
      report, 1, true)
    assert.matches('reply 2 is gone: "one more"', report, 1, true)
  end)

  it("takes the replay's order number for the recorded one, and only where the recorded one was", function()
    local want = { replies = { { text = "Order #57: 3 items, €3.80" } } }
    local ids = { ["2"] = "57" }
    assert.same({}, replay.compare(want, { replies = { { text = "Order #2: 3 items, €3.80" } } }, ids))
    assert.same({ "reply 1 text:", '  - "Order #57: 3 items, €3.80"', '  + "Order #2: 2 items, €3.80"' },
      replay.compare(want, { replies = { { text = "Order #2: 2 items, €3.80" } } }, ids))
    assert.equal(3, #replay.compare(want, { replies = { { text = "Order #2: 3 items, €3.80" } } }))
  end)

  it("compares choices and cards by what a shopper sees and taps", function()
    local want = { replies = { { text = "x", choices = { { title = "A", payload = "a" } },
      cards = { { sku = "s", title = "S", price = { amount = 1, currency = "EUR" } } } } } }
    local same = { replies = { { text = "x", choices = { { title = "A", payload = "a" } },
      cards = { { sku = "s", title = "S", price = { amount = 1, currency = "EUR" } } } } } }
    assert.same({}, replay.compare(want, same))
    same.replies[1].choices[1].payload = "b"
    same.replies[1].cards[1].price.amount = 2
    assert.same({
      "reply 1 choices:", "  - A [a]", "  + A [b]",
      "reply 1 cards:", '  - s "S" 1 EUR', '  + s "S" 2 EUR',
    }, replay.compare(want, same))
  end)

  it("replays a conversation a person answered in: the agent's reply is the same agent's", function()
    local chat = testing.conversation { user = "replay-spec-3" }
    chat:send "hello"
    chat:send "a person please"
    chat:agent("claim", { agent = "sam" })
    chat:agent("reply", { agent = "sam", text = "Hi, Sam here" })
    chat:agent("handback", { agent = "sam" })
    chat:send "hello"
    local doc = recorded(chat)
    local said = {}
    for _, turn in ipairs(doc.turns) do
      for _, r in ipairs(turn.replies) do
        if r.agent then said[#said + 1] = r.agent.name end
      end
    end
    assert.same({ "sam" }, said)
    chat:reset()
    local result = replay.run(doc)
    assert.same({ string.format("spec: %d turns, no difference", #doc.turns) }, replay.report("spec", result))
    -- another agent's words are a difference
    assert.same({ "reply 1 agent:", '  - "sam"', '  + "kim"' },
      replay.compare({ replies = { { text = "Hi", agent = { name = "sam" } } } },
        { replies = { { text = "Hi", agent = { name = "kim" } } } }))
  end)

  it("takes order numbers after '#' only: a price that happens to be a replay's order number differs", function()
    local ids = { ["2"] = "3", ["3"] = "4" }
    local want = { replies = { { text = "Order #3: Latte €3.80" } } }
    assert.same({}, replay.compare(want, { replies = { { text = "Order #2: Latte €3.80" } } }, ids))
    assert.same({ "reply 1 text:", '  - "Order #3: Latte €3.80"', '  + "Order #2: Latte €2.80"' },
      replay.compare(want, { replies = { { text = "Order #2: Latte €2.80" } } }, ids))
    -- a recorded number where the replay's belongs is not the replay's order
    assert.equal(3, #replay.compare(want, { replies = { { text = "Order #3: Latte €3.80" } } }, ids))
    -- "#2.50" is a number, not an order
    assert.equal(3, #replay.compare({ replies = { { text = "now #3.80" } } },
      { replies = { { text = "now #2.80" } } }, ids))
  end)

  it("keeps each link's URL but a payment link's, and compares it", function()
    local want = { replies = { { text = "x", link = { title = "Size guide", url = "https://shop.example/sizes" } } } }
    assert.same({}, replay.compare(want, { replies = { { text = "x",
      link = { title = "Size guide", url = "https://shop.example/sizes" } } } }))
    assert.same({ "reply 1 link:", '  - "Size guide" <https://shop.example/sizes>',
      '  + "Size guide" <https://shop.example/sizes-2>' },
      replay.compare(want, { replies = { { text = "x",
        link = { title = "Size guide", url = "https://shop.example/sizes-2" } } } }))
  end)

  it("refuses a turn whose time is not a time, and leaves the clock sane", function()
    local native = require "parley.testing.native"
    local before = native.now()
    local doc = { parley = replay.FORMAT, channel = "rest", user = "replay-spec-4",
      turns = { { at = 1e300, send = { text = "hello" } }, { at = -5, send = { text = "hello" } } } }
    local result = replay.run(doc)
    assert.equal(2, result.differing)
    local report = table.concat(replay.report("spec", result), "\n")
    assert.matches('"at": 1e+300 is not a time', report, 1, true)
    assert.matches('"at": -5 is not a time', report, 1, true)
    assert.is_true(math.abs(native.now() - before) < 60 * 1000)
    -- the clock moves at most a thousand years, whatever it is asked
    native.advance(1e300)
    assert.is_true(native.now() - before < 1001 * 366 * 24 * 3600 * 1000)
    native.advance(-1e300)
    assert.is_true(native.now() > before - 1001 * 366 * 24 * 3600 * 1000)
  end)
end)
