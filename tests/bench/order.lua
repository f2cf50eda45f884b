-- tests/bench/order.lua: a wrk script in which many distinct shoppers each
-- have the bench's order bot's whole conversation (tests/bench/order/), in
-- order, over
--   POST /v1/bots/order/messages
--   hi -> Ana -> latte -> large -> yes   (the last reply: "Order placed")
--
--   wrk -t1 -c64 -d10s -s order.lua http://HOST:PORT/v1/bots/order/messages -- PREFIX
--   wrk -t1 -c1 -d5s -s order.lua URL -- PREFIX    (one shopper at a time)
--
-- How shoppers are driven and timed, and the RESULT line: shoppers.lua,
-- which this file runs with its STEPS.

-- The conversation: the field and value each message sends, and a piece of
-- each reply that shows the bot understood (the bot's tone has one wording
-- per sentence, so whole phrases are safe here).
local STEPS = {
  { "text", "hi", "What's your name?" },                                -- greeting
  { "text", "Ana", '"payload":"latte"' },                               -- the drink choices
  { "payload", "latte", '"payload":"large"' },                          -- which size
  { "payload", "large", "Large Latte: €4.20" },                         -- the line and its price, yes/no
  { "payload", "yes", "Order placed, Ana: Large Latte, total €4.20" },  -- the total
}

-- shoppers.lua lies beside this file (wrk names the script as it was given).
local here = debug.getinfo(1, "S").source:match "^@(.*/)" or ""
assert(loadfile(here .. "shoppers.lua"))(STEPS, "order.lua")
