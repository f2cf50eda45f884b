return {
  help = {
    match = { "help", "what can i do" },
    run = function(c)
      c:say "help"
      return c:resume()
    end,
  },
  faq = {
    match = { en = { "question" }, de = { "frage" } },
    run = function(c) return c:call("faq") end,
  },
  restart = {
    match = { "start over" },
    run = function(c)
      c:say "restarting"
      return c:restart()
    end,
  },
  human = {
    match = { "a person please" },
    run = function(c) return c:handoff("asked") end,
  },
  quiet = {
    match = { "shh" },
    run = function(c) c:say "ok_quiet" end,
  },
}
