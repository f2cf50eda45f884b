return {
  persona = { name = "Ali", emoji = false },
  templates = {
    en = { welcome = "Type a command.", fallback = "Something broke." },
    ["es-419"] = { welcome = "Escribe un comando.", fallback = "Algo falló." },
  },
}
