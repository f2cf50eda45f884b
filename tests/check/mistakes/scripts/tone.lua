return {
  persona = { name = "Ana" },
  templates = {
    en = {
      greet = "Hi, I'm {persona.name}!",
      welcome = "Welcome, {persona}!",
      added = "Added a {size} {product}.",
      goodbye = "Bye!",
      help = "Ask me anything.",
      fallback = "Sorry, something went wrong.",
    },
    es = {
      greet = "¡Hola, soy {persona.name}!",
      welcome = "¡Bienvenido, {persona}!",
      added = "Añadí {product} en talla {size}.",
      farewell = "¡Adiós!",
      help = "Pregúntame lo que quieras.",
      fallback = "Lo siento, algo salió mal.",
    },
  },
}
