-- scripts/router.lua: "a question" calls the ask flow (on a finished
-- conversation too, which would go on at main.resume after it).
return {
  question = {
    match = { "a question" },
    run = function(c) return c:call("ask") end,
  },
}
