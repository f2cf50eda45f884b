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
end)
