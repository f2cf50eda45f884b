-- tests/bench/typed.lua: the default bot's conversation of
-- tests/bench/conversation.lua, typed instead of tapped, so that every
-- message after the first goes through c:understand (and the router's
-- examples): hi -> "a large latte" -> "a croissant" -> "that's all".
-- For tests/bench/understand.sh, beside the tapped one on the same server.
--
--   wrk -t1 -c64 -d10s -s typed.lua http://HOST:PORT/v1/bots/barista/messages -- PREFIX
local STEPS = {
  { "text", "hi", '"payload":"latte"' },          -- greeting + the drink choices
  { "text", "a large latte", "Large Latte" },     -- understood: added, + the pairing offer
  { "text", "a croissant", "€7.20" },             -- understood: added, anything else?
  { "text", "that's all", "Total: €7.20" },       -- the choice's title, typed: the summary
}

local here = debug.getinfo(1, "S").source:match "^@(.*/)" or ""
assert(loadfile(here .. "shoppers.lua"))(STEPS, "typed.lua")
