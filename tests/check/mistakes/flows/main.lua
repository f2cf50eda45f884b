-- A fixture of tests/e2e/test_check.py: every line marked MISTAKE is one
-- that `parley check` must report, at that line.
return {
  start = function(c)
    c:say "greet"
    return c:call("order", nil, "wrap_up")
  end,

  wrap_up = {
    ask = function(c)
      c:say("added", { product = "T-shirt" }) -- MISTAKE: {size} not given
      c:say "goodbye" -- MISTAKE (warning): no 'es' text
    end,
    answer = function(c, msg)
      if msg.text == "again" then return c:call("ordr") end -- MISTAKE: no flow 'ordr'
      if msg.text == "more" then return c:call("order", nil, "wrapup") end -- MISTAKE: no step 'wrapup'
      c:say(c:t "thanks_a_lot") -- MISTAKE: no template 'thanks_a_lot'
      return msg.text == "sum" and "sumary" or "wrap_up" -- MISTAKE: no step 'sumary'
    end,
  },

  summary = function(c)
    c:say "farewell" -- MISTAKE: no 'en' text, and en is the default
  end,
}
