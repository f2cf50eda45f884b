-- scripts/router.lua: what the shopper can say at any point of the order.
-- An intent interrupts the current step; c:resume() asks that step again.
local luigi = require "lib.luigi"

return {
  help = {
    match = {
      en = { "help", "what can you do", "how does this work" },
      it = { "aiuto", "help", "cosa sai fare", "come funziona" },
    },
    examples = {
      en = { "how do i order", "what can i ask you", "i need help", "i don't understand how this works" },
      it = { "come si ordina", "cosa posso chiederti", "ho bisogno di aiuto", "non capisco come funziona" },
    },
    run = function(c)
      c:say "help"
      return c:resume()
    end,
  },

  cancel = {
    match = {
      en = { "cancel", "start over", "start again", "never mind", "restart" },
      it = { "annulla", "ricomincia", "ricominciamo", "da capo", "lascia stare", "cancella" },
    },
    examples = {
      en = { "forget my order", "delete everything", "i want to start from scratch" },
      it = { "cancella tutto", "voglio ricominciare", "dimentica il mio ordine" },
    },
    run = function(c)
      c.cart:clear()
      c:say "cancelled"
      c.started_over = true -- main.start skips its hello this turn
      return c:restart()
    end,
  },

  cart = {
    match = {
      en = { "my order", "my cart", "show cart", "what did i order", "what have i ordered" },
      it = { "il mio ordine", "carrello", "cosa ho ordinato", "riepilogo" },
    },
    -- "wher is my pizza" too: the order so far and what it costs
    examples = {
      en = { "where is my pizza", "where's my order", "what's in my order so far", "what did i order", "how much do i owe you",
             "show me what i ordered" },
      it = { "dov'è la mia pizza", "dov'è il mio ordine", "cosa c'è nel mio ordine", "fammi vedere il mio ordine", "quanto ti devo" },
    },
    run = function(c)
      if c.cart:is_empty() then
        c:say "cart_empty"
      else
        c:say("cart", { lines = luigi.cart_text(c), total = c:price(c.cart:total()) })
      end
      return c:resume()
    end,
  },

  -- Remembered in the profile: the rules and the toppings follow it.
  vegetarian = {
    match = {
      en = { "vegetarian", "veggie", "no meat", "i don't eat meat" },
      it = { "vegetariano", "vegetariana", "vegetariani", "senza carne", "niente carne" },
    },
    examples = {
      en = { "i'm a vegetarian", "i dont eat meat", "i do not eat meat" },
      it = { "sono vegetariano", "non mangio carne" },
    },
    run = function(c)
      c.profile.vegetarian = true
      c:say "veggie_noted"
      return c:resume()
    end,
  },

  -- Someone from the pizzeria takes over (the agent console, /agent).
  human = {
    match = {
      en = { "talk to a person", "a human", "a real person", "speak to someone", "call the pizzeria" },
      it = { "parlare con una persona", "un operatore", "una persona vera", "chiamare la pizzeria" },
    },
    examples = {
      en = { "can i talk to someone", "can i speak to someone at the pizzeria", "i want to speak to a human" },
      it = { "voglio parlare con una persona", "voglio parlare con qualcuno", "passami un operatore" },
    },
    run = function(c) return c:handoff("asked for a person") end,
  },

  -- "italiano" / "english" in either language switches the conversation.
  language = {
    match = { "italiano", "in italian", "parla italiano", "english", "in english", "inglese" },
    examples = { en = { "can we speak italian" }, it = { "in inglese per favore" } },
    run = function(c, msg)
      c:set_locale(luigi.says_any(msg.text, { "english", "inglese" }) and "en" or "it")
      c:say "language_set"
      return c:resume()
    end,
  },
}
