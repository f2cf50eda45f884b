-- flows/main.lua: says what it understood (for the specs, which mostly ask
-- testing.understand directly).
return {
  start = function(c)
    local said = c:understand()
    c:say("understood", { n = #said.items })
  end,
}
