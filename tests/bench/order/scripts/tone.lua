-- scripts/tone.lua: the order bot's few sentences (English only).
return {
  persona = { name = "Otto", formality = "casual", emoji = false },
  templates = {
    en = {
      greet = "Hi, I'm {persona.name}. What's your name?",
      ask_name = "Sorry, what's your name?",
      ask_drink = "Nice to meet you, {name}. Which drink would you like?",
      didnt_catch_drink = "Sorry, which drink? Pick one below.",
      ask_size = "What size for your {drink}?",
      didnt_catch_size = "Which size for the {drink}? Pick one below.",
      confirm = "{line}: {price}. Shall I place the order?",
      yes = "Yes",
      no = "No",
      placed = "Order placed, {name}: {line}, total {total}",
      not_placed = "No problem, let's start again.",
      fallback = "Sorry, something went wrong on my side. Could you say that again?",
    },
  },
}
