return {
  persona = { name = "Testy", emoji = false },
  templates = {
    en = {
      welcome = { "Welcome A", "Welcome B", "Welcome C", "Welcome D" },
      menu = "Menu: what now?",
      menu_again = "Pick something from the menu.",
      ask_number = "Give me a number up to {max}.",
      not_a_number = "Not a number up to {max}.",
      got_number = "You said {n}.",
      your_name = "What is your name?",
      hello_name = "Hello {name}, I am {persona.name}!!!",
      help = "This is help.",
      faq_question = "What is your question?",
      faq_answer = "Good question about {topic}.",
      restarting = "Starting over.",
      ok_quiet = "Quiet now.",
      emoji = "Hi ☕ there 🎉!",
      shop = "What would you like?",
      recommend = "{n} ideas:",
      reason_coffee = "good with coffee",
      fallback = "Something broke.",
    },
    de = {
      welcome = "Willkommen",
      menu = "Menü: was nun?",
      menu_again = "Wähle etwas aus dem Menü.",
      fallback = "Etwas ist kaputt.",
    },
  },
  style = function(text, info)
    return (text:gsub("!!!", "!"))
  end,
}
