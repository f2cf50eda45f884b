-- spec/hostile_spec.lua: every attack of the hostile fixture fails its own
-- message only, inside the real runtime — run by `parley test tests/bots/hostile`.
local testing = require "parley.testing"

local attacks = {
  loop = "instruction budget",
  xpcall_loop = "instruction budget",
  error_handler_loop = "instruction budget",
  pcall_loop = "instruction budget",
  coroutine_loop = "instruction budget",
  close_loop = "instruction budget",
  gc_loop = "__gc is not available",
  rep_empty = "instruction budget",
  move = "instruction budget",
  insert_len = "instruction budget",
  load_many = "instruction budget",
  load_huge = "load: the chunk is",
  big_find = " budget",
  big_concat = " budget",
  big_compare = "time budget",
  memory = " budget", -- memory, or time under the sanitizers' slower copies
  log_flood = "instruction budget",
  json_memory = " budget",
  json_values = " budget",
  pattern = "instruction budget",
  pattern_gsub = "instruction budget",
  pattern_gmatch = "instruction budget",
  plain_find_worst = "instruction budget",
  phrase = "instruction budget",
  fold = "instruction budget",
}

describe("a hostile brand", function()
  for name, reason in pairs(attacks) do
    it("cannot outlive its budgets with " .. name, function()
      local chat = testing.conversation()
      chat:send "hello"
      assert.equal("Ready.", chat:text())
      testing.errors()
      chat:fails(name)
      assert.equal("Something broke.", chat:text())
      local logged = table.concat(testing.errors(), "\n")
      assert.matches("flows/main.lua:%d+: ", logged)
      assert.truthy(logged:find(reason, 1, true), logged)
      chat:send "hello"
      assert.equal("Ready.", chat:text())
    end)
  end

  it("cannot resume or close a turn's coroutine kept from an earlier turn", function()
    local chat = testing.conversation()
    chat:send "keep_turn"
    assert.equal("Ready.", chat:text())
    chat:send "resume_turn"
    local said = chat:texts()
    assert.matches("resume: .*a turn's own coroutine", said[1])
    assert.matches("close: .*a turn's own coroutine", said[1])
    assert.equal("Ready.", said[2])
    assert.same({}, testing.errors())
  end)

  it("adds __gc to a metatable too late for it to run", function()
    local chat = testing.conversation()
    chat:send "gc_late"
    assert.equal("Ready.", chat:text())
    assert.same({}, testing.errors())
  end)
end)
