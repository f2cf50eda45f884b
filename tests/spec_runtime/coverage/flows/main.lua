-- flows/main.lua: "gift" goes to the step the specs never reach.
return {
  start = function(c)
    c:say "hello"
    return "menu"
  end,

  menu = {
    answer = function(c, msg)
      if msg.text == "gift" then return "gift_note" end
      c:say("echo", { text = c:t "you_said" .. " " .. (msg.text or "") })
      return "menu"
    end,
  },

  gift_note = {
    ask = function(c) c:say "ask_note" end,
    answer = function(c) c:say "noted" return "menu" end,
  },
}
