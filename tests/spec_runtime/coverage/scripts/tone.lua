-- scripts/tone.lua: English and Spanish; "bye" and "ask_note" and "noted"
-- are never said by the specs, nor the Spanish "echo". The French texts
-- are of a locale bot.json does not have: coverage leaves them out.
return {
  templates = {
    en = {
      hello = "Hello.",
      echo = "{text}",
      you_said = "You said",
      ask_note = "A note for the gift?",
      noted = "Noted.",
      bye = "Bye.",
      fallback = "Something broke.",
    },
    es = {
      hello = "Hola.",
      echo = "{text}",
      you_said = "Dijiste",
      ask_note = "¿Una nota para el regalo?",
      noted = "Anotado.",
      bye = "Adiós.",
      fallback = "Algo falló.",
    },
    fr = {
      hello = "Bonjour.",
      fallback = "Oups.",
    },
  },
}
