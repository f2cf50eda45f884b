-- A sub-flow: asks for a number up to slots.max and returns it.
return {
  start = {
    ask = function(c) c:say("ask_number", { max = c.slots.max }) end,
    answer = function(c, msg)
      local n = math.tointeger(tonumber(msg.text))
      if not n or n > c.slots.max then
        c:say("not_a_number", { max = c.slots.max })
        return "start"
      end
      return c:done(n)
    end,
  },
}
