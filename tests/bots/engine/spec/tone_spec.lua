-- spec/tone_spec.lua: a tone's persona per locale, as scripts/tone.lua
-- defines it: merged over the base persona, checked at load.
local tone = require "parley.tone"

local SOURCE = [[
return {
  persona = {
    name = "Bea",
    es = { emoji = false },
    fr = { name = "Béa" },
  },
}
]]

local function load(persona, locales)
  return tone.new({ persona = persona, templates = { en = { fallback = "Oops", greet = "I'm {persona.name}" }, es = { fallback = "Uy", greet = "Soy {persona.name}" } } },
    "scripts/tone.lua", locales or { "en", "es" }, SOURCE)
end

describe("a persona per locale", function()
  it("merges a locale's fields over the base persona, and leaves the base without them", function()
    local t = load { name = "Bea", emoji = true, formality = "casual", es = { emoji = false, name = "Bea la barista" } }
    assert.same({ name = "Bea", emoji = true, formality = "casual" }, t:persona_of "en")
    assert.same({ name = "Bea la barista", emoji = false, formality = "casual" }, t:persona_of "es")
    assert.same(t:persona_of "en", t.persona) -- the default locale's
    assert.equal("Soy Bea la barista", t:render("greet", nil, "es", "seed/", 1))
    assert.equal("I'm Bea", t:render("greet", nil, "en", "seed/", 1))
    assert.same({}, t.warnings)
  end)

  it("takes a value under a locale's name that is not a table as a base field", function()
    local t = load({ name = "Bea", id = "bea-01" }, { "en", "id" })
    assert.same({ name = "Bea", id = "bea-01" }, t:persona_of "en")
    assert.same({ name = "Bea", id = "bea-01" }, t:persona_of "id")
  end)

  it("keeps a table under a name that is no locale as a base field, without a warning", function()
    local t = tone.new({ persona = { name = "Bea", bio = { short = "barista" }, ui = { x = 1 } },
      templates = { en = { fallback = "Oops", who = "{persona.name}, {persona.bio.short}" } } },
      "scripts/tone.lua", { "en" }, SOURCE)
    assert.same({}, t.warnings)
    assert.equal("Bea, barista", t:render("who", nil, "en", "seed/", 1))
  end)

  it("warns of a table for a language the bot does not have, and keeps it as a base field", function()
    local t = load { name = "Bea", fr = { name = "Béa" } }
    assert.same({ "scripts/tone.lua:5: persona.fr looks meant for the locale 'fr', which is not one of the bot's "
      .. "locales (en, es): it is kept as a field of the base persona, laid over no locale's persona" }, t.warnings)
    assert.equal("Bea", t:persona_of("en").name)
    assert.same({ name = "Béa" }, t:persona_of("en").fr)
    t = load { name = "Bea", ["pt-BR"] = { name = "Bia" } }
    assert.equal(1, #t.warnings)
  end)
end)

describe("parley.text.strip_emoji", function()
  local text = require "parley.text"

  it("removes what emoji = false removes, and says how many", function()
    assert.same({ "−€2 → ok ✓", 2 }, { text.strip_emoji "−€2 → ☕ ok ✓ 🇪🇸" })
    assert.same({ "plain − text", 0 }, { text.strip_emoji "plain − text" })
  end)

  it("raises for text that is not UTF-8", function()
    local ok, err = pcall(text.strip_emoji, "bad \255 bytes")
    assert.is_false(ok)
    assert.matches("not valid UTF%-8", err)
  end)
end)
