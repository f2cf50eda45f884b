-- spec/languages_spec.lua: c:understand's built-in words in each language
-- (runtime/lua/parley/words.lua): numbers, "a couple of", ordinals, yes and
-- no, negation, fillers and typos, on a catalog titled in every locale.
local testing = require "parley.testing"

-- The parse's items as "qty sku option=value ..." strings, in order.
local function items(got)
  local out = {}
  for _, item in ipairs(got.items) do
    local parts = { tostring(item.qty), item.sku }
    local names = {}
    for name in pairs(item.options or {}) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do parts[#parts + 1] = name .. "=" .. tostring(item.options[name]) end
    out[#out + 1] = table.concat(parts, " ")
  end
  return out
end

local ORDERS = {
  en = { { "two large coffees with oat milk and a croissant", { "2 coffee milk=oat size=large", "1 croissant" } },
         { "a couple of cofees", { "2 coffee" } } },
  es = { { "dos cafés grandes con avena y un cruasán", { "2 coffee milk=oat size=large", "1 croissant" } },
         { "tres medialunas, por favor", { "3 croissant" } },
         { "un café sin azúcar", { "1 coffee sugar=none" } } },
  pt = { { "dois cafés grandes com aveia e um croissant", { "2 coffee milk=oat size=large", "1 croissant" } },
         { "quatro cafés pequenos", { "4 coffee size=small" } } },
  fr = { { "deux cafés grands avec avoine et un croissant", { "2 coffee milk=oat size=large", "1 croissant" } },
         { "cinq croissants s'il vous plaît", { "5 croissant" } } },
  de = { { "zwei große Kaffee mit Hafermilch und ein Croissant", { "2 coffee milk=oat size=large", "1 croissant" } },
         { "drei Kaffe ohne Zucker", { "3 coffee sugar=none" } } },
  it = { { "due caffè grandi con latte d'avena e un cornetto", { "2 coffee milk=oat size=large", "1 croissant" } },
         { "un altro cornetto", { "1 croissant" } } },
  ja = { { "コーヒーLを2つとクロワッサン", { "2 coffee size=large", "1 croissant" } },
         { "オーツミルクのコーヒーを三つ", { "3 coffee milk=oat" } } },
}

local ANSWERS = {
  en = { yes = "yes please", no = "no thanks", second = "the second one" },
  es = { yes = "sí, claro", no = "no, gracias", second = "el segundo" },
  pt = { yes = "sim", no = "não, obrigado", second = "o segundo" },
  fr = { yes = "oui, d'accord", no = "non merci", second = "le deuxième" },
  de = { yes = "ja, gerne", no = "nein danke", second = "der zweite" },
  it = { yes = "sì, certo", no = "no grazie", second = "il secondo" },
  ja = { yes = "はい、お願いします", no = "いいえ、結構です", second = "2番目" },
}

describe("c:understand in every built-in language", function()
  for _, locale in ipairs { "en", "es", "pt", "fr", "de", "it", "ja" } do
    describe(locale, function()
      for _, case in ipairs(ORDERS[locale]) do
        it("orders: " .. case[1], function()
          assert.same(case[2], items(testing.understand(case[1], locale)))
        end)
      end
      it("yes, no and a choice number", function()
        local a = ANSWERS[locale]
        local yes, no, second = testing.understand(a.yes, locale), testing.understand(a.no, locale),
          testing.understand(a.second, locale)
        assert.is_true(yes.yes)
        assert.is_false(no.yes)
        assert.equal(2, second.number)
        assert.same({}, second.items)
      end)
      it("a code, however it is typed", function()
        assert.equal("HOLA5", testing.understand("hola5", locale).code)
      end)
    end)
  end

  it("reads a long clause without punctuation to its end", function()
    -- (the scan reads 128 units at a time; a clause is read in windows)
    assert.same({ "2 coffee" }, items(testing.understand(string.rep("ok ", 140) .. "two coffees", "en")))
    assert.same({ "2 coffee" }, items(testing.understand(string.rep("あ", 300) .. "コーヒーを2つ", "ja")))
  end)

  it("uses the words of the bot's own languages only", function()
    -- "zwei" is German: an English shopper of this bot may write it, as the
    -- bot speaks German too; a bot without German would not count it
    assert.same({ "2 coffee" }, items(testing.understand("zwei Kaffee", "en")))
  end)

  it("a conversation in Spanish fills nothing it did not hear", function()
    local chat = testing.conversation { locale = "es" }
    chat:send "dos cafés y un cruasán"
    assert.truthy(chat:says "2")
  end)
end)
