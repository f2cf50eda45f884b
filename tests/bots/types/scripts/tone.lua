return {
  persona = { name = "Tess" },
  templates = { en = { fallback = "Something broke." } },
}
