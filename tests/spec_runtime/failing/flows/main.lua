-- flows/main.lua: "crash" indexes a nil value, "loop" never ends, "menu"
-- offers a choice whose turn crashes; anything else is answered.
return {
  start = function(c)
    c:say "hello"
    return "menu"
  end,

  menu = {
    answer = function(c, msg)
      if msg.text == "crash" then
        local order = nil
        c:say_text(order.id)
      elseif msg.text == "loop" then
        while true do end
      elseif msg.text == "menu" then
        c:say("pick", nil, { choices = { { title = "Explode", payload = "crash" } } })
      elseif msg.payload == "crash" then
        c:say_text(("x"):bad_method())
      else
        c:say "ok"
      end
      return "menu"
    end,
  },
}
