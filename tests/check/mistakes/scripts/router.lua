return {
  help = {
    match = {
      en = { "help" },
      es = { "ayuda", "¿?" }, -- MISTAKE (warning): only punctuation
    },
    run = function(c) c:say "help"; return c:resume() end,
  },
  human = {
    match = {
      en = { "a person", "i need help" }, -- MISTAKE (warning): 'help' comes first
      es = { "una persona" },
    },
    run = function(c) return c:handoff "asked" end,
  },
}
