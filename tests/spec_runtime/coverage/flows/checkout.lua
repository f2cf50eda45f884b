-- flows/checkout.lua: a flow no spec calls.
return {
  start = function(c) c:say "bye" end,
}
