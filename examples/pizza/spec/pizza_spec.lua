-- spec/pizza_spec.lua: Luigi's conversations, run by `parley test
-- examples/pizza` through the real engine, sandbox and store.
--
-- Luigi words most things in a few variations (chosen per session and
-- turn), so the specs assert on what every variation says: the names,
-- prices and totals, and where the conversation waits.
local testing = require "parley.testing"

local function skus(list)
  local out = {}
  for i, card in ipairs(list) do out[i] = card.sku end
  return out
end

local function has(list, wanted)
  for _, v in ipairs(list) do
    if v == wanted then return true end
  end
  return false
end

-- A shopper who has got as far as the toppings of a regular, classic pizza.
local function at_extras(pizza, opts)
  local chat = testing.conversation(opts)
  chat:send "hi"
  chat:tap(pizza)
  chat:tap(1) -- regular / normale
  chat:tap(1) -- classic crust / impasto classico
  assert.equal("pizza.extras", chat:step())
  return chat
end

describe("Luigi's", function()
  describe("the menu", function()
    it("greets as Luigi, gives his tip and offers the pizzas in stock with prices", function()
      local chat = testing.conversation()
      chat:send "hi"
      assert.truthy(chat:says "Luigi")
      assert.truthy(chat:says "Diavola")
      assert.truthy(chat:says "what everybody orders")
      local choices = chat:choices()
      assert.equal("Margherita · €8.00", choices[1])
      assert.equal("Diavola · €10.00", choices[3])
      assert.equal(7, #choices)
      assert.same({ "margherita", "marinara", "diavola", "quattro_formaggi", "ortolana", "capricciosa", "vesuvio" },
        skus(chat:cards()))
      local card = chat:cards()[1]
      assert.equal("https://images.parley.example/pizza/margherita.jpg", card.image)
      assert.same({ amount = 800, currency = "EUR" }, card.price)
      assert.equal("pizza.choose", chat:step())
    end)

    it("taps a choice by its number", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "3"
      assert.equal("diavola", chat:slots().sku)
      assert.equal("pizza.size", chat:step())
      assert.same({ "Regular", "Large · +€3.00", "Family · +€8.00" }, chat:choices())
    end)
  end)

  describe("a whole order", function()
    it("builds two pizzas with extras, takes the suggestions, delivers free over €30 and sums up", function()
      local chat = testing.conversation()
      chat:send "hello"
      chat:tap "Diavola"
      assert.truthy(chat:says "Diavola")
      chat:tap "Large"
      assert.equal("pizza.crust", chat:step())
      assert.truthy(chat:says "Diavola (Large)")
      chat:tap "Classic crust"
      assert.equal("pizza.extras", chat:step())
      assert.truthy(has(chat:choices(), "Fresh chilli · +€0.80"))
      chat:tap "Fresh chilli"
      assert.truthy(chat:says "Fresh chilli")
      chat:tap "That's it"

      -- a spicy pizza: Luigi suggests something cold, and says why
      assert.equal("main.offer", chat:step())
      assert.same({ "birra_moretti", "limonata" }, skus(chat:cards()))
      assert.truthy(chat:says "Birra Moretti: it cools the chilli down beautifully.")
      chat:tap "Add Birra Moretti"
      assert.equal("main.more", chat:step())
      assert.truthy(chat:says "€18.30") -- 10.00 + 3.00 large + 0.80 chilli + 4.50 beer

      chat:tap "Another pizza"
      assert.equal("pizza.choose", chat:step())
      assert.is_falsy(chat:says "My tip") -- the tip is for the first pizza only
      chat:tap "Margherita"
      chat:tap "Regular"
      chat:tap "Gluten-free"
      chat:tap "No extras"

      -- two pizzas now (and a drink already): a dessert to share
      assert.equal("main.offer", chat:step())
      assert.equal("tiramisu", chat:cards()[1].sku)
      assert.truthy(chat:says "save room for something sweet")
      chat:tap "Add Tiramisù"
      assert.truthy(chat:says "€34.30")

      chat:tap "That's all"
      assert.equal("delivery.how", chat:step())
      assert.truthy(chat:says "Delivery is €2.50, free from €30.00")
      chat:tap "Delivery"
      assert.equal("delivery.address", chat:step())
      chat:send "Via Roma 12, Milano"
      assert.truthy(chat:says "delivery is on the house")
      assert.truthy(chat:says [[
Here's your order:
1 × Diavola (Large, Classic crust) — €13.00
1 × Fresh chilli — €0.80
1 × Birra Moretti — €4.50
1 × Margherita (Regular, Gluten-free) — €10.50
1 × Tiramisù — €5.50
Total: €34.30
We'll bring it to Via Roma 12, Milano in about 40 minutes]])
      assert.truthy(chat:says "Grazie mille!\n— Luigi 🍕") -- the style hook signs the order
      assert.is_nil(chat:step()) -- the conversation is over; the order stays in the cart
      local cart = chat:cart()
      assert.equal(5, #cart.lines)
      assert.same({ size = "large", crust = "classic" }, cart.lines[1].options)
      assert.equal(1300, cart.lines[1].unit_price)
    end)

    it("adds the delivery fee to a small order", function()
      local chat = testing.conversation()
      chat:send "a margherita, please"
      assert.truthy(chat:says "Luigi")
      assert.equal("pizza.size", chat:step())
      chat:tap "Regular"
      chat:tap "Classic crust"
      chat:tap "No extras"
      assert.equal("main.more", chat:step()) -- nothing to suggest for one margherita
      assert.same({}, chat:cards())
      chat:tap "That's all"
      chat:tap "Delivery"
      chat:send "Via Roma 12, Milano"
      assert.truthy(chat:says "Delivery is €2.50; orders from €30.00 travel free.")
      assert.truthy(chat:says "1 × Margherita (Regular, Classic crust) — €8.00\n1 × Delivery — €2.50\nTotal: €10.50")
    end)

    it("lets you pick it up, with a drink and a dessert from the menu", function()
      local chat = at_extras "Marinara"
      chat:tap "No extras"
      chat:tap "Something to drink"
      assert.equal("sides.choose", chat:step())
      assert.equal("Birra Moretti · €4.50", chat:choices()[1])
      chat:tap "Coca-Cola"
      assert.equal("main.more", chat:step())
      chat:tap "A dessert"
      chat:send "un tiramisù"
      assert.truthy(chat:says "€15.50") -- 7.00 + 3.00 + 5.50
      chat:send "that's all"
      chat:tap "I'll pick it up"
      assert.truthy(chat:says "Total: €15.50")
      assert.truthy(chat:says "ready for pickup in about 20 minutes")
      assert.is_falsy(chat:says "Delivery")
    end)

    it("welcomes you back to the order you left, and works the delivery fee out again", function()
      local chat = at_extras "Margherita"
      chat:tap "No extras"
      chat:tap "That's all"
      chat:tap "Delivery"
      chat:send "Via Roma 12"
      assert.truthy(chat:says "Total: €10.50")
      chat:send "hi again"
      assert.truthy(chat:says "Your order is still here: 1 item(s), €8.00.")
      assert.equal("main.more", chat:step())
      assert.equal(1, #chat:cart().lines)
    end)
  end)

  describe("typed free text", function()
    it("takes a quantity, a pizza, a size and a crust in one sentence", function()
      local chat = testing.conversation()
      chat:send "Could I have two LARGE diavola, thin crust?"
      assert.truthy(chat:says "2 × Diavola (Large, Thin & crispy)")
      assert.equal("pizza.extras", chat:step())
      chat:send "extra mozzarella"
      chat:send "that's it"
      local lines = chat:cart().lines
      assert.equal(2, lines[1].qty)
      assert.equal(1300, lines[1].unit_price)
      assert.same({ sku = "extra_mozzarella", qty = 2 }, { sku = lines[2].sku, qty = lines[2].qty })
      -- two (spicy) pizzas: the spicy rule and the dessert rule both score;
      -- catalog order breaks the tie, so the beer comes first
      assert.equal("birra_moretti", chat:cards()[1].sku)
    end)

    it("asks only what the words left open", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "quattro formaggi, gluten free"
      assert.equal("pizza.size", chat:step())
      chat:send "family please"
      assert.equal("pizza.extras", chat:step())
      assert.equal(1100 + 800 + 250, chat:cart().lines[1].unit_price)
    end)

    it("adds a drink named at 'anything else?'", function()
      local chat = at_extras "Margherita"
      chat:tap "No extras"
      chat:send "2 coke"
      assert.same({ sku = "coca_cola", qty = 2 }, { sku = chat:cart().lines[2].sku, qty = chat:cart().lines[2].qty })
      assert.truthy(chat:says "€14.00")
      assert.equal("main.more", chat:step())
    end)
  end)

  describe("help, cancel and the cart, at any point", function()
    it("answers help and asks the same question again", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:tap "Ortolana"
      chat:send "help"
      assert.truthy(chat:says "I take your pizza order")
      assert.truthy(chat:says "Ortolana")
      assert.equal("pizza.size", chat:step())
      chat:tap "Large"
      assert.equal("pizza.crust", chat:step())

      local spicy = at_extras "Vesuvio"
      spicy:tap "No extras"
      assert.equal("main.offer", spicy:step())
      spicy:send "what can you do?"
      assert.truthy(spicy:says "I take your pizza order")
      assert.equal("birra_moretti", spicy:cards()[1].sku) -- the suggestion again
      assert.equal("main.offer", spicy:step())
    end)

    it("answers help while waiting for the address", function()
      local chat = at_extras "Margherita"
      chat:tap "No extras"
      chat:tap "That's all"
      chat:tap "Delivery"
      chat:send "help"
      assert.truthy(chat:says "I take your pizza order")
      assert.truthy(chat:says "Where should we bring it?")
      assert.equal("delivery.address", chat:step())
    end)

    it("cancels in the middle of a pizza: the cart is emptied and it starts over, without a second hello", function()
      local chat = at_extras "Capricciosa"
      chat:tap "Mushrooms"
      assert.equal(2, #chat:cart().lines)
      chat:send "cancel"
      assert.truthy(chat:says "I've cleared your order")
      assert.is_falsy(chat:says "Luigi")
      assert.equal(0, #chat:cart().lines)
      assert.equal("pizza.choose", chat:step())
      assert.equal(7, #chat:choices())
    end)

    it("cancels while waiting for the address", function()
      local chat = at_extras "Margherita"
      chat:tap "No extras"
      chat:tap "That's all"
      chat:tap "Delivery"
      chat:send "never mind, start over"
      assert.equal(0, #chat:cart().lines)
      assert.equal("pizza.choose", chat:step())
    end)

    it("shows the order on request and goes on where it was", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "my order"
      assert.truthy(chat:says "Your order is still empty")
      assert.equal("pizza.choose", chat:step())
      chat:tap "Diavola"
      chat:tap "Family"
      chat:tap "Thin & crispy"
      chat:tap "No extras"
      chat:tap "No thanks"
      chat:send "what did I order?"
      assert.truthy(chat:says "1 × Diavola (Family, Thin & crispy) — €18.00\nTotal: €18.00.")
      assert.equal("main.more", chat:step())
    end)
  end)

  describe("recommendations", function()
    it("suggests nothing after a single margherita", function()
      local chat = at_extras "Margherita"
      chat:tap "No extras"
      assert.equal("main.more", chat:step())
      assert.equal(0, #chat:cards())
    end)

    it("suggests a cold drink once the chilli is on, even on a mild pizza", function()
      local chat = at_extras "Margherita"
      chat:tap "Fresh chilli"
      chat:tap "That's it"
      assert.equal("main.offer", chat:step())
      assert.same({ "birra_moretti", "limonata" }, skus(chat:cards()))
      chat:send "yes"
      assert.equal("birra_moretti", chat:cart().lines[3].sku)
    end)

    it("suggests a dessert once the cart has two pizzas", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "2 margherita"
      chat:tap "Regular"
      chat:tap "Classic crust"
      chat:tap "No extras"
      assert.equal("main.offer", chat:step())
      assert.same({ "tiramisu", "panna_cotta" }, skus(chat:cards()))
      assert.truthy(chat:says "save room for something sweet")
      chat:tap "No thanks"
      assert.equal("main.more", chat:step())
    end)

    it("remembers a vegetarian: a vegetarian tip, and no meat among the toppings", function()
      local chat = testing.conversation()
      chat:send "hi"
      assert.truthy(chat:says "the Diavola")
      chat:send "I'm vegetarian"
      assert.truthy(chat:says "no meat for you")
      assert.truthy(chat:says "Margherita")
      assert.truthy(chat:says "all flavour, no meat")
      assert.is_true(chat:session().profile.vegetarian)
      chat:tap "Ortolana"
      chat:tap "Regular"
      chat:tap "Classic crust"
      local toppings = chat:choices()
      assert.is_falsy(has(toppings, "Prosciutto crudo · +€2.50"))
      assert.truthy(has(toppings, "Mushrooms · +€1.20"))
    end)
  end)

  describe("sold out", function()
    it("never offers the sold-out pizza or topping, and says so when asked for them", function()
      local chat = testing.conversation()
      chat:send "hi"
      for _, title in ipairs(chat:choices()) do assert.is_nil(title:find("Tartufata", 1, true)) end
      assert.is_falsy(has(skus(chat:cards()), "tartufata"))
      chat:send "a tartufata please"
      assert.truthy(chat:says "Tartufata")
      assert.equal("pizza.choose", chat:step())
      assert.equal(0, #chat:cart().lines)

      chat:tap "Margherita"
      chat:tap "Regular"
      chat:tap "Classic crust"
      for _, title in ipairs(chat:choices()) do assert.is_nil(title:find("Burrata", 1, true)) end
      chat:send "burrata"
      assert.truthy(chat:says "Burrata")
      assert.equal(1, #chat:cart().lines)
      assert.equal("pizza.extras", chat:step())
    end)

    it("says so when the first message asks for it", function()
      local chat = testing.conversation()
      chat:send "one tartufata, large"
      assert.truthy(chat:says "Tartufata")
      assert.equal("pizza.choose", chat:step())
    end)
  end)

  describe("what it does not understand", function()
    it("asks again for a pizza it does not know, also when the words say 'pizza'", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "a unicorn pizza"
      assert.truthy(chat:says "didn't catch which pizza")
      assert.equal("pizza.choose", chat:step())
      assert.equal(0, #chat:cart().lines)
      chat:send "pineapple pizza"
      assert.truthy(chat:says "Pineapple? Mamma mia")
      assert.equal("pizza.choose", chat:step())
    end)

    it("asks again for a size, a crust, a topping, delivery and an address", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:tap "Margherita"
      chat:send "purple"
      assert.truthy(chat:says "Which size for the Margherita?")
      assert.equal("pizza.size", chat:step())
      chat:tap "Regular"
      chat:send "square"
      assert.truthy(chat:says "Which crust for the Margherita?")
      chat:tap "Classic crust"
      chat:send "gummy bears"
      assert.truthy(chat:says "which topping?")
      assert.equal("pizza.extras", chat:step())
      chat:tap "No extras"
      chat:send "hmm"
      assert.truthy(chat:says "didn't get that")
      assert.equal("main.more", chat:step())
      chat:tap "That's all"
      chat:send "by drone"
      assert.truthy(chat:says "Delivery or pickup?")
      chat:send "deliver it"
      chat:send "soon"
      assert.truthy(chat:says "street and a number")
      assert.equal("delivery.address", chat:step())
    end)
  end)

  describe("in Italian", function()
    it("takes a whole order typed in Italian, with Italian prices", function()
      local chat = testing.conversation { locale = "it" }
      chat:send "ciao"
      assert.truthy(chat:says "Luigi")
      assert.truthy(chat:says "la Diavola")
      assert.equal("Margherita · 8,00 €", chat:choices()[1])
      chat:send "una margherita grande"
      assert.equal("pizza.crust", chat:step())
      assert.truthy(chat:says "Margherita (Grande)")
      assert.same({ "Impasto classico", "Sottile e croccante", "Senza glutine · +2,50 €" }, chat:choices())
      chat:tap "Impasto classico"
      assert.truthy(has(chat:choices(), "Funghi · +1,20 €"))
      chat:send "funghi"
      chat:send "basta"
      assert.equal("main.more", chat:step())
      chat:tap "Da bere"
      chat:send "una birra"
      assert.truthy(chat:says "Birra Moretti")
      chat:send "aiuto"
      assert.truthy(chat:says "prendo il tuo ordine")
      assert.equal("main.more", chat:step())
      chat:send "il mio ordine"
      assert.truthy(chat:says "Il tuo ordine finora:")
      chat:tap "Basta così"
      assert.truthy(chat:says "La consegna costa 2,50 €, gratis da 30,00 €")
      chat:tap "Passo a ritirare"
      assert.truthy(chat:says [[
Ecco il tuo ordine:
1 × Margherita (Grande, Impasto classico) — 11,00 €
1 × Funghi — 1,20 €
1 × Birra Moretti — 4,50 €
Totale: 16,70 €
Sarà pronta per il ritiro tra circa 20 minuti]])
      assert.equal("it", chat:session().locale)
    end)

    it("cancels with 'annulla' and understands 'sono vegetariana'", function()
      local chat = at_extras("Margherita", { locale = "it" })
      chat:send "annulla tutto"
      assert.truthy(chat:says "ho cancellato il tuo ordine")
      assert.equal(0, #chat:cart().lines)
      assert.equal("pizza.choose", chat:step())
      chat:send "sono vegetariana"
      assert.truthy(chat:says "niente carne per te")
      assert.truthy(chat:says "tutto gusto e niente carne")
    end)

    it("switches language when asked", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "parli italiano?"
      assert.truthy(chat:says "parliamo italiano")
      assert.equal("Margherita · 8,00 €", chat:choices()[1])
      assert.equal("it", chat:session().locale)
      chat:send "in english please"
      assert.truthy(chat:says "let's speak English")
      assert.equal("en", chat:session().locale)
    end)
  end)

  describe("the style hook", function()
    it("keeps emoji off SMS", function()
      local emoji = "[\240-\244]" -- the lead byte of a 4-byte UTF-8 sequence: 🍕 🔥 🛵
      local sms = testing.conversation { channel = "twilio" } -- SMS
      sms:send "hi"
      assert.truthy(sms:says "Luigi")
      assert.is_nil(sms:text():find(emoji))
      local web = testing.conversation()
      web:send "hi"
      assert.truthy(web:text():find(emoji))
    end)
  end)

  describe("a person from the pizzeria", function()
    it("takes over when asked, in the shopper's language, and hands back to the order", function()
      local chat = testing.conversation { channel = "webchat", locale = "it" }
      chat:send "ciao"
      chat:send "vorrei parlare con una persona"
      assert.truthy(chat:says "Chiamo qualcuno della pizzeria")
      assert.equal("waiting", chat:handoff().state)
      assert.equal("Giulia di Luigi's è qui.", chat:agent("claim", { agent = "Giulia" })[1].text)
      chat:agent("handback", { agent = "Giulia", flow = "main", step = "start" })
      assert.equal(nil, chat:handoff())
      chat:send "margherita"
      assert.truthy(#chat:texts() > 0)
    end)
  end)
end)
