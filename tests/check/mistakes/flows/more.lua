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
}
