-- spec/covered_spec.lua: reaches some of the bot, not all of it, so that
-- tests/spec_runtime/run.py knows what `parley test --coverage` must list.
local testing = require "parley.testing"

it("greets and echoes in English", function()
  local chat = testing.conversation { locale = "en" }
  chat:send "hi"
  chat:send "there"
  assert.equal("You said there", chat:text())
end)

it("greets in Spanish", function()
  local chat = testing.conversation { locale = "es" }
  chat:send "hola"
  assert.equal("Hola.", chat:text())
end)

it("asks a question after the conversation ended, and leaves it there", function()
  local chat = testing.conversation { locale = "en" }
  chat:send "hi"
  chat:send "done"
  assert.is_true(chat:session().ended)
  chat:send "a question"
  assert.equal("ask.start", chat:step()) -- main.resume waits below it, not reached
end)
