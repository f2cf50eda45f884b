-- tests/bench/conversation.lua: a wrk script in which many distinct shoppers
-- each have the default bot's whole conversation, in order, over
--   POST /v1/bots/barista/messages
--   hi -> latte -> large -> croissant -> done   (the last reply has "Total")
--
--   wrk -t1 -c64 -d10s -s conversation.lua http://HOST:PORT/v1/bots/barista/messages -- PREFIX
--   wrk -tT -c64 -d100s -s conversation.lua URL -- PREFIX seed N T
--
-- The seed mode sends only first messages ({"user": <new>, "text": "hi"}).
-- How shoppers are driven and timed, and the RESULT line: shoppers.lua,
-- which this file runs with its STEPS.

-- The conversation: the field and value each message sends, and a piece of
-- each reply that shows the bot understood (the tone varies the sentences,
-- so these are choices' payloads, names and prices, not whole sentences).
local STEPS = {
  { "text", "hi", '"payload":"latte"' },       -- greeting + the drink choices
  { "payload", "latte", '"payload":"large"' }, -- which size
  { "payload", "large", "Large Latte" },       -- added, + the pairing offer
  { "payload", "croissant", "€7.20" },         -- added, 2 items so far, anything else?
  { "payload", "done", "Total: €7.20" },       -- the summary
}

-- shoppers.lua lies beside this file (wrk names the script as it was given).
local here = debug.getinfo(1, "S").source:match "^@(.*/)" or ""
assert(loadfile(here .. "shoppers.lua"))(STEPS, "conversation.lua")
