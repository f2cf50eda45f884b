-- flows/ask.lua: the router's question; the specs never answer it.
return {
  start = {
    ask = function(c) c:say "you_said" end,
    answer = function(c) return c:done() end,
  },
}
