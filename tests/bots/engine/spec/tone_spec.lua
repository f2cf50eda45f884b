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

  it("refuses a locale's entry that is not a table, at its line", function()
    local ok, err = pcall(load, { name = "Bea", es = false })
    assert.is_false(ok)
    assert.equal("scripts/tone.lua:4: persona.es must be a table of the persona's fields in 'es'", err)
  end)

  it("warns of fields for a locale the bot does not have", function()
    local t = load { name = "Bea", fr = { name = "Béa" } }
    assert.same({ "scripts/tone.lua:5: persona.fr is not used: 'fr' is not one of the bot's locales (en, es)" }, t.warnings)
    assert.equal("Bea", t:persona_of("en").name)
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
