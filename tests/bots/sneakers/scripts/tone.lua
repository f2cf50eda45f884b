-- The sneaker shop's tone: emoji in English, none in Spanish (the
-- persona's `es` fields), and a sentence that names the colour that ran out.
return {
  persona = { name = "Sol", emoji = true, es = { emoji = false } },
  templates = {
    en = {
      welcome = "Hi, I'm {persona.name} 👟 Which shoe, size and colour?",
      added = "Added: {title} ({options}) ✅",
      order = "Order #{order}: {total} → pay below 💳",
      sold_out = "Sorry, the {title} has just sold out 😢 I've taken it out of your order.",
      sold_out_choice = "Sorry, the {title} in {choice} has just sold out 😢 I've taken it out of your order.",
      cart = "In your order: {count} pair(s), {total}.",
      paid = "Paid, thank you! 🎉",
      your_order = "Order #{order}: {status}.",
      no_orders = "No orders yet.",
      help = "Tell me a shoe, size and colour, or say pay.",
      didnt_catch = "Sorry, which shoe?",
      which_options = "Which size and colour?",
      none_left = "Sorry, no {title} left.",
      fallback = "Something broke.",
    },
    es = {
      welcome = "Hola, soy {persona.name} 👟 ¿Qué zapatilla, talla y color?",
      added = "Añadido: {title} ({options}) ✅",
      order = "Pedido #{order}: {total} → paga abajo 💳",
      sold_out = "Lo siento, la {title} se acaba de agotar 😢 La he quitado de tu pedido.",
      sold_out_choice = "Lo siento, la {title} en {choice} se acaba de agotar 😢 La he quitado de tu pedido.",
      cart = "En tu pedido: {count} par(es), {total}.",
      paid = "¡Pagado, gracias! 🎉",
      your_order = "Pedido #{order}: {status}.",
      no_orders = "Aún no hay pedidos.",
      help = "Dime zapatilla, talla y color, o di pagar.",
      didnt_catch = "Perdona, ¿qué zapatilla?",
      which_options = "¿Qué talla y color?",
      none_left = "Lo siento, no queda {title}.",
      fallback = "Algo falló.",
    },
  },
}
