return {
  persona = { name = "Ana" },
  templates = {
    en = {
      hello = "Hi, I'm {persona.name}.",
      fallback = "Sorry, something went wrong.",
    },
  },
}
