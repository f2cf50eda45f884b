-- spec/engine_spec.lua: the runtime's flow engine, tone, catalog, cart,
-- rules and sandbox, seen from a bot — run by `parley test tests/bots/engine`.
local testing = require "parley.testing"

local function started(opts)
  local chat = testing.conversation(opts)
  chat:send "hello"
  testing.errors()
  return chat
end

describe("flows", function()
  it("starts at the main flow's start step and waits at the first question", function()
    local chat = testing.conversation()
    chat:send "hello"
    assert.matches("^Welcome [ABCD]$", chat:texts()[1])
    assert.equal("Menu: what now?", chat:texts()[2])
    assert.equal("main.menu", chat:step())
  end)

  it("calls a sub-flow with arguments and gets its result back at the named step", function()
    local chat = started()
    chat:tap "Count to something"
    assert.equal("ask_number.start", chat:step())
    assert.equal(2, #chat:session().stack)
    assert.same({ max = 100 }, chat:slots())
    chat:send "1000"
    assert.equal("Not a number up to 100.\nGive me a number up to 100.", chat:text())
    chat:send "42"
    assert.equal("You said 42.\nMenu: what now?", chat:text())
    assert.equal("main.menu", chat:step())
    assert.equal(1, #chat:session().stack)
  end)

  it("maps a typed choice title or number to the choice's payload", function()
    local chat = started()
    chat:send "tell MY name"
    assert.equal("main.ask_name", chat:step())
    local other = started()
    other:send "1"
    assert.equal("ask_number.start", other:step())
  end)

  it("keeps the profile across flows", function()
    local chat = started()
    chat:tap "Tell my name"
    chat:send "Ada"
    assert.equal("Ada", chat:session().profile.name)
  end)

  it("reports a step name that does not exist, with the step's file:line", function()
    local chat = started()
    chat:fails "bad_step"
    assert.equal("Something broke.", chat:text())
    local errors = table.concat(testing.errors(), "\n")
    assert.matches("flows/main.lua:%d+: returned 'no_such_step', but flow 'main' has no step 'no_such_step'", errors)
    assert.equal("main.menu", chat:step())
  end)

  it("reports a step that returns something that is not a transition", function()
    local chat = started()
    chat:fails "bad_return"
    assert.matches("returned a number", table.concat(testing.errors(), "\n"))
  end)
end)

describe("the router", function()
  it("interrupts any step and resumes it by asking again", function()
    local chat = started()
    chat:tap "Count to something"
    chat:send "help"
    assert.equal("This is help.\nGive me a number up to 100.", chat:text())
    assert.equal("ask_number.start", chat:step())
  end)

  it("can be triggered by a payload intent:NAME", function()
    local chat = started()
    chat:press "intent:help"
    assert.equal("This is help.\nMenu: what now?", chat:text())
  end)

  it("runs a sub-flow as an interruption and comes back to the interrupted step", function()
    local chat = started()
    chat:tap "Count to something"
    chat:send "I have a question"
    assert.equal("What is your question?", chat:text())
    chat:send "opening hours"
    assert.equal("Good question about opening hours.\nGive me a number up to 100.", chat:text())
    assert.equal("ask_number.start", chat:step())
    chat:send "7"
    assert.equal("You said 7.\nMenu: what now?", chat:text())
  end)

  it("restarts the main flow", function()
    local chat = started()
    chat:tap "Count to something"
    chat:send "start over"
    assert.equal("Starting over.", chat:texts()[1])
    assert.equal("main.menu", chat:step())
    assert.equal(1, #chat:session().stack)
  end)

  it("stays silently at the step when an intent returns nothing", function()
    local chat = started()
    chat:send "shh"
    assert.equal("Quiet now.", chat:text())
    assert.equal("main.menu", chat:step())
  end)

  it("does not interrupt a step that turns intents off", function()
    local chat = started()
    chat:tap "Tell my name"
    chat:send "help"
    assert.equal("Hello help, I am Testy!\nMenu: what now?", chat:text())
  end)

  it("resumes a finished conversation at the start flow's 'resume' step, without the welcome", function()
    local chat = started()
    chat:send "finish"
    assert.equal("Bye for now.", chat:text())
    assert.is_nil(chat:step())
    assert.is_true(chat:session().ended)
    chat:send "help"
    assert.equal("This is help.\nMenu: what now?", chat:text())
    assert.equal("main.menu", chat:step())
    assert.is_nil(chat:session().ended)
  end)

  it("hands a finished conversation back at the start flow's 'resume' step, without the welcome", function()
    local chat = started()
    chat:send "finish"
    assert.is_true(chat:session().ended)
    chat:send "a person please"
    chat:agent "claim"
    local told = chat:agent "handback"
    assert.equal(1, #told)
    assert.equal("Menu: what now?", told[1].text)
    assert.equal("main.menu", chat:step())
  end)

  it("hands a conversation that has not begun back at the start flow's start", function()
    local chat = testing.conversation()
    chat:send "a person please"
    chat:agent "claim"
    local told = chat:agent "handback"
    assert.matches("^Welcome [ABCD]$", told[1].text)
    assert.equal("main.menu", chat:step())
  end)

  it("begins a conversation whose first message is an intent that resumes", function()
    local chat = testing.conversation()
    chat:send "help"
    assert.matches("^This is help.\nWelcome [ABCD]\nMenu: what now%?$", chat:text())
    assert.equal("main.menu", chat:step())
  end)

  it("runs an intent's sub-flow where no step waits, then goes on where c:resume() would", function()
    local first = testing.conversation()
    first:send "a question first"
    assert.equal("What is your question?", first:text())
    first:send "opening hours" -- the conversation had not begun: now it does
    assert.matches("^Good question about opening hours.\nWelcome [ABCD]\nMenu: what now%?$", first:text())
    local chat = started()
    chat:send "finish"
    chat:send "question"
    assert.equal("faq.start", chat:step())
    chat:send "prices" -- it had finished: back at its 'resume' step
    assert.equal("Good question about prices.\nMenu: what now?", chat:text())
    assert.equal("main.menu", chat:step())
  end)

  it("keeps a finished conversation finished after an intent that returns nothing; the next message begins again", function()
    local chat = started()
    chat:send "finish"
    chat:send "shh"
    assert.equal("Quiet now.", chat:text())
    assert.is_nil(chat:step())
    chat:send "hello"
    assert.matches("^Welcome [ABCD]\nMenu: what now%?$", chat:text())
  end)

  it("matches intents per locale", function()
    local chat = started { locale = "de" }
    chat:send "eine frage bitte"
    assert.equal("What is your question?", chat:text())
    local en = started()
    en:send "eine frage"
    assert.equal("Pick something from the menu.", en:text())
  end)
end)

describe("the tone", function()
  it("picks variations deterministically: a replayed conversation says the same words", function()
    local chat = testing.conversation { user = "replayed-shopper" }
    chat:send "hello"
    chat:send "variations"
    local first = chat:texts()
    chat:reset()
    chat:send "hello"
    chat:send "variations"
    assert.same(first, chat:texts())
  end)

  it("varies the words between shoppers and turns", function()
    local seen = {}
    for _ = 1, 12 do
      local chat = testing.conversation()
      chat:send "hello"
      seen[chat:texts()[1]] = true
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.is_true(n >= 2)
  end)

  it("interpolates variables and the persona, and applies the style hook", function()
    local chat = started()
    chat:tap "Tell my name"
    chat:send "Ada"
    assert.equal("Hello Ada, I am Testy!", chat:texts()[1])
    chat:send "raw"
    assert.equal("plain words!", chat:text())
  end)

  it("strips emoji when the persona says so", function()
    local chat = started()
    chat:send "emoji"
    assert.equal("Hi there!", chat:text())
  end)

  it("strips emoji only: never a minus sign, an arrow, a currency, a symbol in text or CJK", function()
    local chat = started()
    chat:send "symbols"
    assert.equal("−€1.50 → ¥500 ✓ ★ ♥ ☀ 咖啡 done −3 ← ok", chat:text())
    chat:send "emoji_choices"
    assert.same({ "Yes", "Back → menu", "−1" }, (function()
      local titles = {}
      for i, choice in ipairs(chat:offered()) do titles[i] = choice.title end
      return titles
    end)())
  end)

  it("takes persona fields per locale over the base persona", function()
    local de = started { locale = "de" }
    de:send "emoji"
    assert.equal("Hallo ☕ von Testi 🎉!", de:text()) -- the German persona has emoji, and its own name
    de:press "name"
    de:send "Ada"
    assert.equal("Hallo Ada, ich bin Testi!", de:texts()[1])
    local en = started()
    en:send "emoji_choices"
    assert.equal("Hi there!", en:texts()[1])
    en:send "locale_de" -- the persona follows the locale the flow switches to
    en:send "emoji"
    assert.equal("Hallo ☕ von Testi 🎉!", en:text())
  end)

  it("tells the style hook the kind, key, locale, channel and the locale's persona", function()
    local chat = started()
    chat:send "style_info"
    assert.equal("Info [text style_info en rest Testy false]", chat.replies[1].text)
    assert.equal("Info choice [choice nil en rest Testy false]", chat.replies[1].choices[1].title)
    assert.equal("Info card [card nil en rest Testy false]", chat.replies[1].cards[1].subtitle)
    local de = started { locale = "de", channel = "console" }
    de:send "style_info"
    assert.equal("Info [text style_info de console Testi true]", de.replies[1].text)
  end)

  it("falls back to the default locale for untranslated templates", function()
    local chat = started { locale = "de" }
    assert.equal("Willkommen", chat:session() and "Willkommen")
    chat:send "help"
    assert.equal("This is help.\nMenü: was nun?", chat:text())
  end)

  it("accepts a region in the locale and falls back to the default for unknown ones", function()
    local chat = testing.conversation { locale = "de-AT" }
    chat:send "hallo"
    assert.equal("de", chat:session().locale)
    local other = testing.conversation { locale = "fr" }
    other:send "bonjour"
    assert.equal("en", other:session().locale)
  end)

  it("switches locale from a flow", function()
    local chat = started()
    chat:send "locale_de"
    assert.equal("Wähle etwas aus dem Menü.", chat:text())
    assert.equal("de", chat:session().locale)
  end)

  it("names the missing placeholder and the flow's line", function()
    local chat = started()
    chat:fails "missing_var"
    assert.equal("Something broke.", chat:text())
    assert.matches("flows/main.lua:%d+: template 'hello_name' %(en%) needs {name}", table.concat(testing.errors(), "\n"))
  end)

  it("names an unknown template", function()
    local chat = started()
    chat:fails "unknown_template"
    assert.matches("flows/main.lua:%d+: no template 'no_such_template'", table.concat(testing.errors(), "\n"))
  end)

  it("formats prices per currency", function()
    local chat = started()
    chat:send "price"
    assert.equal("€12.34 | ¥450 | -$0.05 | £1,234,567.89", chat:text())
  end)
end)

describe("the catalog, cart and rules", function()
  local function shop(opts)
    local chat = started(opts)
    chat:tap "Shop"
    return chat
  end

  it("offers only in-stock drinks, with localized titles and prices", function()
    local chat = shop()
    assert.same({ "Café au lait · €3.00", "Green Tea · €2.50" }, chat:choices())
    local de = shop { locale = "de" }
    assert.same("Milchkaffee · 3,00 €", de:choices()[1])
  end)

  it("finds products by the shopper's words, case- and accent-insensitively", function()
    local chat = shop()
    chat:send "find CAFE AU LAIT"
    assert.equal("found: cafe", chat:texts()[1])
    chat:send "find käsekuchen"
    assert.equal("found: cake", chat:texts()[1])
    chat:send "find scone"
    assert.equal("found: ", chat:texts()[1])
    chat:send "all all"
    assert.equal("all: cafe,tea,cake,cookie,gone,yen", chat:texts()[1])
  end)

  it("adds with option price deltas, merges equal lines, changes quantities, removes", function()
    local chat = shop()
    chat:send "add cake whole"
    assert.equal("cart: 1 items, €28.00", chat:text())
    chat:send "add cake whole 2"
    assert.equal("cart: 3 items, €84.00", chat:text())
    chat:send "add cake slice"
    assert.equal(2, #chat:cart().lines)
    chat:send "qty cake 1"
    assert.equal("cart: 2 items, €32.20", chat:text())
    chat:send "remove cake"
    assert.equal("cart: 1 items, €4.20", chat:text())
    chat:send "clear"
    assert.equal("cart: 0 items, empty", chat:text())
  end)

  it("refuses an unknown option and a second currency, naming the flow line", function()
    local chat = shop()
    chat:fails "add cake huge"
    assert.matches("flows/shop.lua:%d+: cart:add: product 'cake' has no size 'huge'", table.concat(testing.errors(), "\n"))
    chat:send "add cafe"
    chat:fails "add yen"
    assert.matches("the cart is in EUR but 'yen' is priced in JPY", table.concat(testing.errors(), "\n"))
    assert.equal(1, #chat:cart().lines)
  end)

  it("taps a product choice into the cart", function()
    local chat = shop()
    chat:tap "Green Tea"
    assert.equal("tea", chat:cart().lines[1].sku)
  end)

  it("ranks recommendations by the rules, skips sold-out and carted items, words the reason", function()
    local chat = shop()
    chat:send "add cafe"
    chat:send "recommend food"
    local cards = chat:cards()
    assert.equal(1, #cards)
    assert.equal("cookie", cards[1].sku)
    assert.equal("good with coffee", cards[1].subtitle)
    chat:send "chocolate"
    chat:send "recommend food"
    cards = chat:cards()
    assert.equal(2, #cards)
    assert.same({ "cookie", "cake" }, { cards[1].sku, cards[2].sku })
    assert.equal("just because", cards[2].subtitle)
  end)
end)

describe("the sandbox", function()
  it("has no io, debug, dofile, loadfile, os.execute, string.dump or binary chunks", function()
    local chat = started()
    chat:send "sandbox"
    assert.equal("io=nil debug=nil dofile=nil loadfile=nil os.execute=nil string.dump=nil binary=true", chat:text())
  end)

  it("aborts a runaway loop: fallback reply, file:line logged, session unchanged", function()
    local chat = started()
    local before = chat:session()
    chat:fails "loop"
    assert.equal("Something broke.", chat:text())
    assert.matches("flows/main.lua:7: instruction budget of 200000 exceeded", table.concat(testing.errors(), "\n"))
    assert.same(before.stack, chat:session().stack)
    chat:send "12"
    assert.equal("a number: 12", chat:text())
  end)

  it("does not let pcall swallow the instruction budget", function()
    local chat = started()
    chat:fails "pcall_loop"
    assert.equal("Something broke.", chat:text())
    assert.matches("instruction budget", table.concat(testing.errors(), "\n"))
  end)

  it("aborts a turn that exhausts the memory budget, and the bot goes on", function()
    local chat = started()
    chat:fails "memory"
    assert.equal("Something broke.", chat:text())
    assert.matches("memory budget of 16 MB exceeded", table.concat(testing.errors(), "\n"))
    chat:send "5"
    assert.equal("a number: 5", chat:text())
  end)

  it("refuses to store a function in a slot, at the line that tried", function()
    local chat = started()
    chat:fails "store_function"
    assert.matches("flows/main.lua:%d+: slot 'f': a function cannot be stored", table.concat(testing.errors(), "\n"))
    chat:fails "store_nested"
    assert.matches("session.stack%[1%].slots.t.f: a function cannot be stored", table.concat(testing.errors(), "\n"))
  end)

  it("offers json and require of the bot's own modules", function()
    local chat = started()
    chat:send "json"
    local got = require("json").decode(chat:text())
    assert.same({ n = 3, null = true, empty = {} }, got)
    chat:send "33"
    assert.equal("a number: 33", chat:text())
  end)
end)

describe("the store", function()
  it("records the transcript: what the shopper said and what the bot answered", function()
    local chat = started()
    chat:send "12"
    local lines = chat:transcript()
    assert.equal("in", lines[#lines - 1].direction)
    assert.equal("12", lines[#lines - 1].body.text)
    assert.equal("out", lines[#lines].direction)
    assert.equal("a number: 12", lines[#lines].body[1].text)
    assert.equal(4, #lines) -- hello and its answer, 12 and its answer
  end)

  it("erases a session and its transcript", function()
    local chat = started()
    assert.is_true(chat:reset())
    assert.is_nil(chat:session())
    assert.equal(0, #chat:transcript())
    assert.is_false(chat:reset())
  end)
end)

describe("analytics events", function()
  it("records the bot's own event with its props, in the turn's commit", function()
    local chat = started()
    chat:send "track"
    local events = chat:events("coupon_viewed")
    assert.equal(1, #events)
    assert.same({ code = "SPRING", tiers = { 1, 2 }, seen = true }, events[1].props)
    -- the turn left the conversation where it was: its row names no step
    assert.is_nil(events[1].step)
    assert.equal(1, events[1].conv)
  end)

  it("records what every turn does: the conversation, the message, the step and the reply", function()
    local chat = testing.conversation()
    chat:send "hello"
    assert.same({ "conversation_started", "message", "step", "reply" }, chat:event_names())
    assert.same({ step = "main.menu" }, chat:events("step")[1].props)
    chat:send "price"
    -- the same step: no step event; one more message and reply
    assert.equal(2, #chat:events("message"))
    assert.equal(1, #chat:events("step"))
  end)

  it("refuses a name that is not a word, props that are not JSON, and props too big, at the script's line", function()
    local chat = started()
    chat:fails "track_bad_name"
    assert.matches("flows/main.lua:%d+: c:track%(name %[, props%]%): name is a word", table.concat(testing.errors(), "\n"))
    chat:fails "track_function"
    assert.matches("flows/main.lua:%d+: c:track: props must be JSON values", table.concat(testing.errors(), "\n"))
    chat:fails "track_big"
    assert.matches("flows/main.lua:%d+: c:track: props are %d+ bytes written as JSON; at most 2048",
      table.concat(testing.errors(), "\n"))
    assert.equal(3, #chat:events("script_error"))
    assert.equal(0, #chat:events("x"))
  end)

  it("cannot be forged by a script setting fields of c", function()
    local chat = started()
    chat:send "forge_events"
    assert.equal("forged", chat:text())
    assert.equal(0, #chat:events "payment_paid")
    assert.equal(0, #chat:events "conversation_started" - 1) -- only the first turn's
    for _, name in ipairs(chat:event_names()) do assert.is_true(#name < 64) end
  end)

  it("keeps nothing a failed turn tracked, and records the error with its file:line only", function()
    local chat = started()
    chat:fails "track_then_fail"
    assert.equal(0, #chat:events("before_failure"))
    local err = chat:events("script_error")
    assert.equal(1, #err)
    assert.matches("^flows/main.lua:%d+$", err[1].props.where)
  end)

  it("records a budget abort as such", function()
    local chat = started()
    chat:fails "track_loop"
    testing.errors()
    assert.equal(0, #chat:events("before_loop"))
    assert.same({ budget = "instructions" }, chat:events("budget_abort")[1].props)
  end)

  it("starts a new conversation after the shopper was quiet for the bot's quiet time", function()
    local chat = started()
    testing.advance(29 * 60)
    chat:send "price"
    assert.equal(1, #chat:events("conversation_started"))
    testing.advance(31 * 60)
    chat:send "price"
    local started_ = chat:events("conversation_started")
    assert.equal(2, #started_)
    assert.equal(2, started_[2].conv)
  end)
end)
