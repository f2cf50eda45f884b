-- The hostile fixture: a brand whose scripts attack the host. Each message
-- text names one attack; "hello" is an ordinary turn. Served beside an
-- innocent bot, none of these may stall, crash or starve the host.
local attacks = {}

-- runaway loops that try to outlive the instruction budget
function attacks.loop() while true do end end
function attacks.xpcall_loop()
  xpcall(function() while true do end end, function() while true do end end)
end
function attacks.error_handler_loop()
  xpcall(error, function() while true do end end)
end
function attacks.pcall_loop()
  while true do pcall(function() while true do end end) end
end
function attacks.coroutine_loop()
  local co = coroutine.wrap(function() while true do end end)
  while true do pcall(co) end
end
function attacks.close_loop()
  local guard <close> = setmetatable({}, { __close = function() while true do end end })
  while true do end
end
function attacks.gc_loop()
  setmetatable({}, { __gc = function() while true do end end })
  collectgarbage()
end
function attacks.gc_late()
  local mt = {}
  setmetatable({}, mt)
  mt.__gc = function() while true do end end
  collectgarbage()
end

-- 20 MB of text, built cheaply (a few hundred copies of 64 KB)
local function big() return ("x"):rep(1 << 16):rep(320) end

-- work inside C functions
function attacks.pattern() return (("a"):rep(300)):find(".-.-.-.-b$") end
function attacks.pattern_gsub() return (("a"):rep(300)):gsub(".-.-.-.-b$", "") end
function attacks.pattern_gmatch() for _ in (("a"):rep(300)):gmatch(".-.-.-.-b$") do end end
function attacks.plain_find_worst() return big():find(("x"):rep(1000) .. "y", 1, true) end
function attacks.big_find()
  local s = big()
  for _ = 1, 150000 do s:find("y", 1, true) end
end
function attacks.big_concat()
  local s = big()
  for _ = 1, 150000 do local _ = s .. "y" end
end
function attacks.big_compare()
  local a, b = big(), big()
  local same = 0
  for _ = 1, 1000000 do if a == b then same = same + 1 end end
end
function attacks.rep_empty() return ("").rep("", 1 << 60) end
function attacks.move() table.move({}, 1, 1 << 50, 2) end
function attacks.insert_len()
  local t = setmetatable({}, { __len = function() return 1 << 50 end })
  table.insert(t, 1, "x")
end
function attacks.load_many()
  local src = "return " .. ("1 + "):rep(20000) .. "1"
  for _ = 1, 100000 do load(src) end
end
function attacks.load_huge() assert(load("return " .. ("1 + "):rep(200000) .. "1")) end
function attacks.memory()
  local t, s = {}, ("x"):rep(1 << 16):rep(16)
  for i = 1, 1 << 30 do t[i] = s .. i end
end
function attacks.log_flood()
  local log, line = require "log", ("x"):rep(100000)
  for _ = 1, 1000000 do log.info(line) end
end
function attacks.phrase()
  local text = require "parley.text"
  local hay, needle = ("a"):rep(1 << 16):rep(64), ("a"):rep(4096)
  for _ = 1, 1000 do text.has_phrase(hay, needle .. "b") end
end
function attacks.fold()
  local text, s = require "parley.text", ("É"):rep(1 << 15):rep(128)
  for _ = 1, 1000 do text.fold(s) end
end
function attacks.json_memory()
  local json = require "json"
  local text = '["' .. big() .. '", "' .. big() .. '", "' .. big() .. '"]' -- 60 MB of strings
  for _ = 1, 4 do pcall(json.decode, text) end
end
function attacks.json_values()
  local json = require "json"
  local text = "[" .. ("1,"):rep(1000):rep(5000) .. "1]" -- 5 million numbers
  for _ = 1, 4 do pcall(json.decode, text) end
end

-- a turn's own coroutine, kept for a later turn (of this shopper or
-- another) to resume or close: refused, since finished turns' coroutines
-- serve later turns
local kept
function attacks.keep_turn() kept = coroutine.running() end
local function refusal(ok, result, message)
  if ok and result then return "done" end
  return tostring(ok and message or result)
end
function attacks.resume_turn(c)
  local resumed = refusal(pcall(coroutine.resume, kept))
  local closed = refusal(pcall(coroutine.close, kept))
  c:say("refused", { resumed = resumed, closed = closed })
end

return {
  start = function(c, msg)
    local attack = attacks[msg.text or ""]
    if attack then attack(c) end
    c:say "ready"
  end,
}
