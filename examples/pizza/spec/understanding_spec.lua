-- spec/understanding_spec.lua: Luigi reads what shoppers type with
-- c:understand: several things in one message, typos, quantities, sizes
-- and crusts, yes and no, choice numbers, and the router's intents by
-- example, in English and in Italian.
local testing = require "parley.testing"

-- The cart as {"2 margherita large thin", "1 coca_cola"}, in cart order.
local function lines(chat)
  local out = {}
  for i, line in ipairs(chat:cart().lines) do
    local words = { tostring(line.qty), line.sku }
    local options = line.options or {}
    if options.size then words[#words + 1] = options.size end
    if options.crust then words[#words + 1] = options.crust end
    out[i] = table.concat(words, " ")
  end
  return out
end

-- A parse as plain data: {"2 margherita size=large crust=thin", ...}.
local function items(r)
  local out = {}
  for i, item in ipairs(r.items) do
    local words = { tostring(item.qty), item.sku }
    for _, name in ipairs { "size", "crust" } do
      if item.options and item.options[name] then words[#words + 1] = name .. "=" .. item.options[name] end
    end
    out[i] = table.concat(words, " ")
  end
  return out
end

-- A shopper at "anything else?" with a regular classic marinara in the cart.
local function at_more()
  local chat = testing.conversation()
  chat:send "a marinara, regular, classic"
  chat:send "no extras"
  assert.equal("main.more", chat:step())
  return chat
end

describe("Luigi understands", function()
  describe("a whole order in one English message", function()
    it("takes two large thin margheritas and a coke, asking only about toppings", function()
      local chat = testing.conversation()
      chat:send "two large margheritas thin crust and a coke"
      assert.truthy(chat:says "Coca-Cola")
      assert.truthy(chat:says "2 × Margherita (Large, Thin & crispy)")
      assert.same({ "1 coca_cola", "2 margherita large thin" }, lines(chat))
      assert.equal("pizza.extras", chat:step())
      chat:send "no thanks"
      -- two pizzas: a dessert to share
      assert.equal("main.offer", chat:step())
      assert.equal("tiramisu", chat:cards()[1].sku)
    end)

    it("asks for what is missing, one pizza after the other, with a typo, an alias and choice numbers", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "a marg and a peperoni, gf" -- "pepperoni": the diavola's alias, typed with one p
      assert.equal("pizza.size", chat:step())
      assert.truthy(chat:says "Margherita")
      chat:send "big, thin"
      assert.equal("pizza.extras", chat:step())
      assert.truthy(chat:says "Thin & crispy")
      chat:send "nope"
      -- the diavola's turn: its crust was said, its size was not
      assert.equal("pizza.size", chat:step())
      assert.truthy(chat:says "Diavola")
      chat:send "the third one"
      assert.truthy(chat:says "Gluten-free")
      assert.equal("pizza.extras", chat:step())
      chat:send "that's it"
      assert.same({ "1 margherita large thin", "1 diavola family gluten_free" }, lines(chat))
      assert.equal("main.offer", chat:step())
    end)

    it("puts the toppings named with a pizza on it, but not the ones said 'no' to", function()
      local chat = testing.conversation()
      chat:send "a medium margarita with ham and olives, no mushrooms, and 2 waters"
      assert.same({ "2 acqua" }, lines(chat))
      assert.equal("pizza.crust", chat:step())
      chat:send "classic"
      assert.truthy(chat:says "Prosciutto crudo")
      assert.truthy(chat:says "Taggiasca olives")
      assert.same({ "2 acqua", "1 margherita regular classic", "1 prosciutto", "1 olives" }, lines(chat))
      assert.equal("pizza.extras", chat:step())
      assert.is_falsy(chat:says "Mushrooms —")
    end)

    it("adds toppings typed at the toppings question, and moves on when another pizza is named there", function()
      local chat = testing.conversation()
      chat:send "2 vesuvio, large, thin"
      assert.equal("pizza.extras", chat:step())
      chat:send "mushroom and extra cheese"
      assert.same({ "2 vesuvio large thin", "2 mushrooms", "2 extra_mozzarella" }, lines(chat))
      assert.equal("pizza.extras", chat:step())
      chat:send "and a quatro formaggi family"
      assert.equal("pizza.crust", chat:step())
      assert.truthy(chat:says "Quattro Formaggi (Family)")
    end)

    it("takes yes, no and choice numbers where Luigi asks", function()
      local chat = testing.conversation()
      chat:send "a diavola, regular, classic crust"
      chat:send "no"
      -- a spicy pizza: something cold, and a yes takes Luigi's first pick
      assert.equal("main.offer", chat:step())
      chat:send "yeah"
      assert.same({ "1 diavola regular classic", "1 birra_moretti" }, lines(chat))
      assert.equal("main.more", chat:step())
      chat:send "the second one" -- something to drink
      assert.equal("sides.choose", chat:step())
      chat:send "the second one" -- the limonata
      assert.truthy(chat:says "San Pellegrino Limonata")
      assert.equal("main.more", chat:step())
      chat:send "two cokes and a panna cota"
      assert.same({ "1 diavola regular classic", "1 birra_moretti", "1 limonata", "2 coca_cola", "1 panna_cotta" },
        lines(chat))
      assert.truthy(chat:says "2 × Coca-Cola")
      assert.equal("main.more", chat:step())
      chat:send "no"
      assert.equal("delivery.how", chat:step())
    end)

    it("says no to Luigi's suggestion", function()
      local chat = testing.conversation()
      chat:send "one vesuvio regular classic"
      chat:send "no extras"
      assert.equal("main.offer", chat:step())
      chat:send "no thank you"
      assert.truthy(chat:says "no problem")
      assert.equal("main.more", chat:step())
      assert.same({ "1 vesuvio regular classic" }, lines(chat))
    end)

    it("answers 'wher is my pizza' (an intent by example, with a typo) and goes on where it was", function()
      local chat = testing.conversation()
      chat:send "a large capricciosa"
      assert.equal("pizza.crust", chat:step())
      chat:send "wher is my pizza"
      assert.truthy(chat:says "Your order is still empty")
      assert.equal("pizza.crust", chat:step())
      chat:send "thin"
      chat:send "wher's my ordr?"
      assert.truthy(chat:says "1 × Capricciosa (Large, Thin & crispy) — €14.50")
      assert.equal("pizza.extras", chat:step())
    end)
  end)

  describe("a whole order in one Italian message", function()
    it("takes a large diavola and two beers, and asks only for the crust", function()
      local chat = testing.conversation { locale = "it" }
      chat:send "una diavola grande e due birre"
      assert.truthy(chat:says "Aggiungo 2 × Birra Moretti")
      assert.equal("pizza.crust", chat:step())
      assert.truthy(chat:says "Diavola (Grande)")
      chat:send "sottile"
      assert.equal("pizza.extras", chat:step())
      chat:send "funghi e olive"
      assert.same({ "2 birra_moretti", "1 diavola large thin", "1 mushrooms", "1 olives" }, lines(chat))
      chat:send "basta così"
      assert.equal("main.more", chat:step()) -- beer is in the cart already: nothing to suggest
    end)

    it("reads 'margerita senza glutine' (a typo) and a size by its number", function()
      local chat = testing.conversation { locale = "it" }
      chat:send "ciao"
      chat:send "margerita senza glutine"
      assert.equal("pizza.size", chat:step())
      assert.truthy(chat:says "Margherita")
      chat:send "la seconda"
      assert.truthy(chat:says "Grande")
      assert.truthy(chat:says "Senza glutine")
      assert.same({ "1 margherita large gluten_free" }, lines(chat))
      chat:send "no grazie"
      assert.equal("main.more", chat:step())
    end)

    it("takes two marinara and a tiramisù, then each question in turn", function()
      local chat = testing.conversation { locale = "it" }
      chat:send "2 marinara e un tiramisù"
      assert.same({ "1 tiramisu" }, lines(chat))
      assert.equal("pizza.size", chat:step())
      chat:send "normale"
      assert.equal("pizza.crust", chat:step())
      chat:send "la prima"
      assert.truthy(chat:says "2 × Marinara (Normale, Impasto classico)")
      assert.same({ "1 tiramisu", "2 marinara regular classic" }, lines(chat))
      chat:send "niente"
      assert.equal("main.more", chat:step()) -- a dessert is already there
      chat:send "sì" -- not an answer to "what else?"
      assert.equal("main.more", chat:step())
      chat:send "nient'altro"
      assert.equal("delivery.how", chat:step())
    end)

    it("takes sì and no grazie, and a drink by its number", function()
      local chat = testing.conversation { locale = "it" }
      chat:send "una vesuvio normale classica"
      chat:send "no grazie"
      assert.equal("main.offer", chat:step())
      chat:send "sì"
      assert.same({ "1 vesuvio regular classic", "1 birra_moretti" }, lines(chat))
      chat:send "da bere"
      assert.equal("sides.choose", chat:step())
      chat:send "la terza"
      assert.same({ "1 vesuvio regular classic", "1 birra_moretti", "1 coca_cola" }, lines(chat))
      assert.equal("main.more", chat:step())
    end)

    it("answers 'dov'è il mio ordine' (an intent by example) and goes on where it was", function()
      local chat = testing.conversation { locale = "it" }
      chat:send "una margherita grande"
      chat:send "dov'è il mio ordine"
      assert.truthy(chat:says "ancora vuoto")
      assert.equal("pizza.crust", chat:step())
      chat:send "dov è la mia piza"
      assert.equal("pizza.crust", chat:step())
    end)
  end)

  describe("more than was asked", function()
    it("makes a pizza named with a drink, and puts toppings said before a pizza on it", function()
      local chat = at_more()
      chat:tap "Something to drink"
      chat:send "a lemonade and a diavola"
      assert.truthy(chat:says "San Pellegrino Limonata")
      assert.equal("pizza.size", chat:step())
      assert.truthy(chat:says "Diavola")
      chat:tap "Regular"
      chat:tap "Classic crust"
      chat:send "extra cheese and chilli on a margherita, large, thin"
      assert.same({ "1 marinara regular classic", "1 limonata", "1 diavola regular classic",
        "1 margherita large thin", "1 extra_mozzarella", "1 fresh_chilli" }, lines(chat))
      -- the diavola is done once another pizza is named at its toppings
      assert.equal("pizza.extras", chat:step())
      assert.truthy(chat:says "Margherita")
    end)

    it("takes a drink at the pizza menu and asks for the pizza again", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:send "a coke please"
      assert.same({ "1 coca_cola" }, lines(chat))
      assert.equal("pizza.choose", chat:step())
      assert.is_falsy(chat:says "didn't catch")
    end)
  end)

  describe("coming back", function()
    it("takes what the first message orders, with the order still in the cart", function()
      local chat = testing.conversation()
      chat:send "a marinara, regular, classic"
      chat:send "that's it"
      chat:send "that's all"
      chat:send "I'll pick it up"
      assert.is_nil(chat:step())
      chat:send "hi again, and 2 beers"
      assert.truthy(chat:says "Your order is still here")
      assert.truthy(chat:says "2 × Birra Moretti")
      assert.same({ "1 marinara regular classic", "2 birra_moretti" }, lines(chat))
      assert.equal("main.more", chat:step())
    end)
  end)

  describe("taps", function()
    it("still build a pizza step by step as before", function()
      local chat = testing.conversation()
      chat:send "hi"
      chat:tap "Ortolana"
      chat:tap "Large"
      chat:tap "Thin & crispy"
      chat:tap "Taggiasca olives · +€1.00"
      chat:tap "That's it"
      assert.same({ "1 ortolana large thin", "1 olives" }, lines(chat))
      assert.equal("main.more", chat:step())
    end)
  end)

  describe("the parser on Luigi's catalog", function()
    local function check(locale, cases)
      for _, case in ipairs(cases) do
        local r = testing.understand(case[1], locale)
        assert.same(case[2], items(r), case[1])
      end
    end

    it("reads English orders", function()
      check("en", {
        { "two large margheritas thin crust and a coke", { "2 margherita size=large crust=thin", "1 coca_cola" } },
        { "Could I have two LARGE diavola, thin crust?", { "2 diavola size=large crust=thin" } },
        { "a marg and a pepperoni, gf", { "1 margherita", "1 diavola crust=gluten_free" } },
        { "medium margarita thin crust and 2 waters", { "1 margherita size=regular crust=thin", "2 acqua" } },
        { "four cheese, xl", { "1 quattro_formaggi size=family" } },
        { "2 cokes and a beer", { "2 coca_cola", "1 birra_moretti" } },
        { "a capriciosa", { "1 capricciosa" } },
        { "a margherita please", { "1 margherita" } },
        { "a unicorn pizza", {} },
      })
      local r = testing.understand("big, thin", "en")
      assert.same({ size = "large", crust = "thin" }, r.options)
      assert.is_true(testing.understand("yeah", "en").yes)
      assert.is_false(testing.understand("no thanks", "en").yes)
      assert.equal(2, testing.understand("the second one", "en").number)
      r = testing.understand("a diavola with extra mozzarella and no mushrooms", "en")
      assert.same({ "1 diavola", "1 extra_mozzarella" }, items(r))
      assert.same({ "mushrooms" }, r.without)
    end)

    it("reads Italian orders", function()
      check("it", {
        { "una diavola grande e due birre", { "1 diavola size=large", "2 birra_moretti" } },
        { "margerita senza glutine", { "1 margherita crust=gluten_free" } },
        { "2 marinara e un tiramisù", { "2 marinara", "1 tiramisu" } },
        { "una margherita normale sottile", { "1 margherita size=regular crust=thin" } },
        { "due birre e un'acqua", { "2 birra_moretti", "1 acqua" } },
        { "tre capricciose famiglia", { "3 capricciosa size=family" } },
        { "un vino rosso", { "1 vino_rosso" } },
        { "una margherita per favore", { "1 margherita" } },
        { "posso avere una diavola", { "1 diavola" } },
        { "basta così", {} },
      })
      -- "basta" is no typo of a crust's alias, "sottile" is the thin crust
      assert.is_nil(testing.understand("basta", "it").options)
      assert.same({ crust = "thin" }, testing.understand("sottile", "it").options)
      assert.same({ size = "large", crust = "classic" }, testing.understand("grande, classica", "it").options)
      assert.is_true(testing.understand("sì", "it").yes)
      assert.is_false(testing.understand("no grazie", "it").yes)
      assert.equal(2, testing.understand("la seconda", "it").number)
      local r = testing.understand("capricciosa senza funghi", "it")
      assert.same({ "1 capricciosa" }, items(r))
      assert.same({ "mushrooms" }, r.without)
    end)

    it("reaches the router's intents by example, typos and all, and never for an order", function()
      assert.equal("cart", testing.understand("wher is my pizza", "en").intent)
      assert.equal("cart", testing.understand("dov'è il mio ordine", "it").intent)
      assert.equal("cart", testing.understand("dov e la mia piza", "it").intent)
      assert.equal("help", testing.understand("how do i ordr", "en").intent)
      assert.equal("human", testing.understand("can i tlak to someone", "en").intent)
      assert.equal("human", testing.understand("passami un operatore", "it").intent)
      assert.equal("cancel", testing.understand("voglio ricominciare", "it").intent)
      for _, order in ipairs { "a margherita please", "i want to order a pizza", "can i get a coke",
        "two large margheritas thin crust and a coke", "where is the margherita" } do
        assert.is_nil(testing.understand(order, "en").intent, order)
      end
      for _, order in ipairs { "una margherita per favore", "vorrei ordinare una pizza", "una diavola grande e due birre",
        "2 marinara e un tiramisù" } do
        assert.is_nil(testing.understand(order, "it").intent, order)
      end
    end)
  end)
end)
