-- spec/aliases_spec.lua: the aliases of a catalog.json as flows see them
-- (p.aliases, choice.aliases) in each locale, and the search that finds by
-- them — run by `parley test tests/bots/aliases`.
local testing = require "parley.testing"

local function shop(opts)
  local chat = testing.conversation(opts)
  chat:send "hello"
  assert.equal("main.shop", chat:step())
  return chat
end

describe("aliases in the flows", function()
  it("gives a list in the shopper's locale: its own, its language's, every locale's, each once", function()
    local en = shop { locale = "en" }
    en:send "aliases latte"
    assert.equal("latte: caffè latte,latté | milk.whole: - | milk.oat: oatly | milk.soy: -", en:text())
    local es = shop { locale = "es-419" }
    es:send "aliases latte"
    assert.equal("latte: lágrima,cortado grande,latté,caffè latte | milk.whole: - | milk.oat: oatly | milk.soy: soja",
      es:text())
  end)

  it("gives a list for every locale from a plain list, and an empty one without aliases", function()
    local es = shop { locale = "es-419" }
    es:send "aliases capu"
    assert.equal("capu: capu,cappu", es:text())
    es:send "aliases tea"
    assert.equal("tea: ", es:text())
  end)

  it("finds a product by an alias of any locale, whatever the shopper's", function()
    local en = shop { locale = "en" }
    en:send "find two cappu please"
    assert.equal("find: capu", en:text())
    en:send "find una lagrima"
    assert.equal("find: latte", en:text())
    en:send "find oatly"
    assert.equal("find: -", en:text())
  end)
end)
