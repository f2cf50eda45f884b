-- flows/main.lua: "gift" goes to a step the specs never reach; "done"
-- ends the conversation, and no spec lets it go on at its 'resume' step.
return {
  start = function(c)
    c:say "hello"
    return "menu"
  end,

  menu = {
    answer = function(c, msg)
      if msg.text == "gift" then return "gift_note" end
      if msg.text == "done" then return c:done() end
      c:say("echo", { text = c:t "you_said" .. " " .. (msg.text or "") })
      return "menu"
    end,
  },

  gift_note = {
    ask = function(c) c:say "ask_note" end,
    answer = function(c) c:say "noted" return "menu" end,
  },

  resume = function() return "menu" end,
}
