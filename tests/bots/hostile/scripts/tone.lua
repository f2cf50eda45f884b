return {
  persona = { name = "Mallory", emoji = true },
  templates = {
    en = {
      ready = "Ready.",
      fallback = "Something broke.",
    },
  },
}
