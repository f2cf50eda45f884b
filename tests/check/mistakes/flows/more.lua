-- A fixture of tests/e2e/test_check.py: the calls a step makes are checked
-- whatever its parameter is named and however the call is written.
local question = { ask = function(conv) conv:say "help" end }

function question.answer(_, msg)
  if msg.text == "x" then return "finish" end -- MISTAKE: no step 'finish'
  return "question"
end

return {
  start = function(conv)
    conv:say "helpp" -- MISTAKE: no template 'helpp'
    conv
      :say("welcom") -- MISTAKE: a call split across lines
    return "other"
  end,

  other = function(c)
    c.say(c, "welcome") -- MISTAKE: {persona} not given
    return "question"
  end,

  question = question,

  escape = function(c)
    local prices = require "lib.prices"
    local socket = require "socket" -- MISTAKE: no module 'socket'
    io.write(prices.total(c.cart.items)) -- MISTAKE: 'io' is not in the sandbox
    local home = os.getenv("HOME") -- MISTAKE: 'os.getenv' is not in the sandbox
    local os = { execute = print }
    os.execute(home, socket, os.time()) -- a local os: not the library
    return "start"
  end,
}
