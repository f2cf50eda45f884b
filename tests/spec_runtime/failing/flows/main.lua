-- flows/main.lua: "crash" indexes a nil value, "loop" never ends, "menu"
-- offers a choice whose turn crashes; anything else is answered. The web
-- chat panel's opening (chat:open) crashes at the start.
return {
  start = function(c, msg)
    if msg.event and msg.event.type == "open" then
      local page = nil
      c:say_text(page.title)
    end
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
