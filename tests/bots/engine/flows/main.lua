-- The engine fixture: each menu entry exercises one piece of the runtime.
local json = require "json"
local numbers = require "lib.numbers"

local actions = {}

function actions.loop() while true do end end
function actions.pcall_loop()
  for _ = 1, 10 do pcall(function() while true do end end) end
end
function actions.memory()
  local t, mb = {}, ("x"):rep(1 << 16):rep(16)
  for i = 1, 64 do t[i] = mb .. i end
end
function actions.store_function(c) c.slots.f = function() end end
function actions.store_nested(c) c.slots.t = { ok = true }; c.slots.t.f = print end
function actions.missing_var(c) c:say "hello_name" end
function actions.unknown_template(c) c:say "no_such_template" end
function actions.bad_step() return "no_such_step" end
function actions.bad_return() return 42 end
function actions.sandbox(c)
  local seen = {}
  for _, name in ipairs { "io", "debug", "dofile", "loadfile" } do
    seen[#seen + 1] = name .. "=" .. tostring(_G[name])
  end
  seen[#seen + 1] = "os.execute=" .. tostring(os.execute)
  seen[#seen + 1] = "string.dump=" .. tostring(string.dump)
  seen[#seen + 1] = "binary=" .. tostring(select(2, load("\27Lua", "x", "b")) ~= nil)
  c:say_text(table.concat(seen, " "))
end
function actions.raw(c) c:say_text "plain words!!!" end
function actions.emoji(c) c:say "emoji" end
function actions.symbols(c) c:say "symbols" end
function actions.emoji_choices(c) c:say("emoji", nil, { choices = { "Yes ✅", "Back → menu", "−1 🎉" } }) end
function actions.style_info(c)
  c:say("style_info", nil, { choices = { "Info choice" } })
  c:cards({ c.catalog:get "cafe" }, { subtitle = function() return "Info card" end })
end
function actions.finish(c) c:say "bye"; return c:done() end
function actions.json(c)
  local decoded = json.decode('{"a": [1, 2, {"b": null}], "e": []}')
  c:say_text(json.encode({ n = #decoded.a, null = decoded.a[3].b == json.null, empty = decoded.e }))
end
function actions.variations(c) c:say "welcome"; c:say "welcome"; c:say "welcome" end
function actions.locale_de(c) c:set_locale "de"; c:say "menu_again" end
function actions.bad_locale(c) c:set_locale "xx" end
function actions.track(c)
  c:track("coupon_viewed", { code = "SPRING", tiers = { 1, 2 }, seen = true })
  c:say_text "tracked"
end
function actions.track_bad_name(c) c:track("no spaces please") end
function actions.forge_events(c)
  -- fields of c a script may set: none of them is what the turn recorded
  c.event_names = { "payment_paid", "big " .. ("x"):rep(100000) }
  c.events = { { name = "payment_paid", props = { total = 1, currency = "EUR" } } }
  c.marks, c.not_understood = 15, true
  c:say_text "forged"
end
function actions.track_function(c) c:track("x", { f = print }) end
function actions.track_big(c) c:track("x", { blob = ("y"):rep(4096) }) end
function actions.track_then_fail(c)
  c:track("before_failure")
  error("boom")
end
function actions.track_loop(c)
  c:track("before_loop")
  while true do end
end
function actions.price(c)
  c:say_text(table.concat({ c:price(1234, "EUR"), c:price(450, "JPY"), c:price(-5, "USD"), c:price(123456789, "GBP") }, " | "))
end

return {
  start = function(c)
    c:say "welcome"
    return "menu"
  end,

  menu = {
    ask = function(c)
      c:say("menu", nil, {
        choices = {
          { title = "Count to something", payload = "count" },
          { title = "Tell my name", payload = "name" },
          { title = "Shop", payload = "shop" },
        },
      })
    end,
    answer = function(c, msg)
      if msg.payload == "count" then return c:call("ask_number", { max = 100 }, "got_number") end
      if msg.payload == "name" then return "ask_name" end
      if msg.payload == "shop" then return c:call("shop", nil, "menu") end
      local action = actions[msg.text or ""]
      if action then
        local next_step = action(c)
        if next_step ~= nil then return next_step end
        return nil
      end
      local n = numbers.parse(msg.text)
      if n then c:say_text("a number: " .. n) return nil end
      c:say "menu_again"
    end,
  },

  -- Where c:resume() (an intent's) goes on once this flow has finished:
  -- back at the menu, without the welcome.
  resume = function() return "menu" end,

  got_number = function(c)
    c:say("got_number", { n = c.result })
    return "menu"
  end,

  ask_name = {
    intents = false, -- a name may be "help"
    ask = function(c) c:say "your_name" end,
    answer = function(c, msg)
      c.profile.name = msg.text
      c:say("hello_name", { name = msg.text })
      return "menu"
    end,
  },
}
