return {
  persona = { name = "Lang", emoji = false },
  templates = {
    en = { understood = "{n}", fallback = "Sorry." },
    es = { understood = "{n}", fallback = "Sorry." },
    pt = { understood = "{n}", fallback = "Sorry." },
    fr = { understood = "{n}", fallback = "Sorry." },
    de = { understood = "{n}", fallback = "Sorry." },
    it = { understood = "{n}", fallback = "Sorry." },
    ja = { understood = "{n}", fallback = "Sorry." },
  },
}
