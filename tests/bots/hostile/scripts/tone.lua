return {
  persona = { name = "Mallory", emoji = true },
  templates = {
    en = {
      ready = "Ready.",
      refused = "resume: {resumed} / close: {closed}",
      fallback = "Something broke.",
    },
  },
}
