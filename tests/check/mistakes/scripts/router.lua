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
      es = { "una persona", "i need help" },
      en = { "a person", "i need help" }, -- MISTAKE (warning): 'help' comes first
    },
    run = function(c) return c:handoff "asked" end,
  },
}
