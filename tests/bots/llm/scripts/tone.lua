-- scripts/tone.lua: the language model fixture's few sentences.
return {
  persona = { name = "Ella" },
  templates = {
    en = {
      hello = "Hello.",
      status = "Your order is on its way.",
      fallback = "Something broke.",
    },
  },
}
