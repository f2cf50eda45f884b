return {
  -- the persona in German: its own name, and emoji (none in English)
  persona = { name = "Testy", emoji = false, de = { name = "Testi", emoji = true } },
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
      -- what emoji = false leaves alone: minus signs, arrows, currency, ticks, stars, CJK, a
      -- heart and a sun in text presentation; and the emoji it takes: ☕, a skin tone, a
      -- family (joined), a flag, a subdivision's flag (tags), a keycap, a heart with its selector
      symbols = "−€1.50 → ¥500 ✓ ★ ♥ ☀ 咖啡 ☕ 👋🏽 👨‍👩‍👧 🇪🇸 🏴󠁧󠁢󠁳󠁣󠁴󠁿 1️⃣ ❤️ done −3 ← ok",
      style_info = "Info",
      bye = "Bye for now.",
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
      emoji = "Hallo ☕ von {persona.name} 🎉!",
      hello_name = "Hallo {name}, ich bin {persona.name}!!!",
    },
  },
  style = function(text, info)
    -- (shows the spec what a hook is told: texts and choices that begin with "Info")
    if text:sub(1, 4) == "Info" then
      text = string.format("%s [%s %s %s %s %s %s]", text, info.kind, tostring(info.key), info.locale, info.channel,
        info.persona.name, tostring(info.persona.emoji))
    end
    return (text:gsub("!!!", "!"))
  end,
}
