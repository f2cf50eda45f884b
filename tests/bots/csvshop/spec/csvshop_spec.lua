-- spec/csvshop_spec.lua: a catalog kept as CSV (catalog.csv), options with
-- several values, option stock and the live stock that paid orders draw
-- from — run by `parley test tests/bots/csvshop`.
--
-- Stock taken by a paid order stays taken for the rest of the run: each
-- product a spec pays for (scone, the pizza's ham) is paid for only there.
local testing = require "parley.testing"

local function shop(opts)
  local chat = testing.conversation(opts)
  chat:send "hello"
  assert.equal("main.shop", chat:step())
  testing.errors()
  return chat
end

local function errors() return table.concat(testing.errors(), "\n") end

describe("a CSV catalog", function()
  it("loads every row as a product, in file order, sold-out ones left out", function()
    local chat = shop()
    chat:send "all"
    assert.equal("all: latte,cafe,brulee,pizza,muffin,scone", chat:text())
    chat:send "all all"
    assert.equal("all: latte,cafe,brulee,pizza,muffin,scone,gone", chat:text())
    chat:send "tag sweet"
    assert.equal("tag: brulee,muffin,scone", chat:text())
  end)

  it("gives titles, prices and option titles in the shopper's language", function()
    local chat = shop()
    chat:send "choices"
    assert.same("Latte · €3.80", chat:choices()[1])
    assert.same("Café crème · €3.20", chat:choices()[2])
    chat:send "show latte"
    assert.matches("^latte Latte stock=%- in=yes | milk: whole%(Whole milk 0%)", chat:text())
    assert.truthy(chat:says "size: small(Small 0)=-/yes medium(Medium 50)=-/yes large(Large 90)=-/yes")
    local ja = shop { locale = "ja" }
    ja:send "show latte"
    assert.matches("^latte カフェラテ ", ja:text())
    assert.truthy(ja:says "oat(オーツミルク 40)=2/yes")
    assert.truthy(ja:says "size: small(S 0)")
    ja:send "show brulee"
    assert.matches("^brulee クレームブリュレ", ja:text())
    -- an option title without a Japanese version: the plain one stands for every locale
    ja:send "show pizza"
    assert.truthy(ja:says "crust required: classic(Classic crust 0)")
  end)

  it("reads options with flags: required, multiple with a max", function()
    local chat = shop()
    chat:send "show pizza"
    assert.truthy(chat:says "toppings multiple max 3: olives(Olives 50)=-/yes basil(Basil 30)=-/yes")
    assert.truthy(chat:says "crust required: ")
  end)
end)

describe("search over a CSV catalog", function()
  it("finds by title, tag and description, case- and accent-insensitively", function()
    local chat = shop()
    -- "creme" also begins a word of "Café crème": second
    chat:send "find CREME BRULEE"
    assert.equal("found: brulee,cafe", chat:text())
    chat:send "find crème brûlée"
    assert.equal("found: brulee,cafe", chat:text())
    chat:send "find a cafe creme please"
    assert.matches("^found: cafe", chat:text())
    chat:send "find burnt sugar"
    assert.equal("found: brulee", chat:text())
    chat:send "find dessert"
    assert.equal("found: brulee", chat:text())
    chat:send "find a bicycle"
    assert.equal("found: ", chat:text())
  end)

  it("finds in Japanese, without spaces between the words", function()
    local ja = shop { locale = "ja" }
    ja:send "find クレームブリュレをください"
    assert.equal("found: brulee,cafe", ja:text()) -- カフェクレーム shares クレーム
    ja:send "find ブリュレ"
    assert.equal("found: brulee", ja:text())
    ja:send "find ラテ"
    assert.equal("found: latte", ja:text())
    ja:send "find スコーン"
    assert.equal("found: scone", ja:text())
    -- words in another of the bot's languages find the same product
    ja:send "find Brulee"
    assert.equal("found: brulee", ja:text())
  end)
end)

describe("aliases in a CSV catalog", function()
  it("gives each view its locale's aliases and every locale's, each once, on products and choices", function()
    local chat = shop()
    chat:send "aliases latte"
    assert.equal("latte: caffè latte,milchkaffee | milk.oat: oat milk,oatly | milk.soy: soya", chat:text())
    chat:send "aliases cafe"
    assert.equal("cafe: ", chat:text())
    local ja = shop { locale = "ja" }
    ja:send "aliases latte"
    assert.equal("latte: ラッテ,caffè latte,milchkaffee | milk.oat: オーツ,oat milk,oatly | milk.soy: soya",
      ja:text())
  end)

  it("finds and names a product by an alias in any locale, not by a choice's", function()
    local chat = shop()
    chat:send "find a milchkaffee please"
    assert.equal("found: latte", chat:text())
    chat:send "named CAFFE LATTE"
    assert.equal("named: latte in=true, in stock: latte", chat:text())
    chat:send "named ラッテをください"
    assert.equal("named: latte in=true, in stock: latte", chat:text())
    chat:send "find oatly"
    assert.equal("found: ", chat:text())
  end)
end)

describe("options in the cart", function()
  it("adds each chosen option's price change to the unit price", function()
    local chat = shop()
    chat:send "add latte size=large milk=whole"
    assert.equal("added latte x1 @ 470", chat:text())
    chat:send "add latte size=medium milk=oat"
    assert.equal("added latte x1 @ 470", chat:text())
    chat:send "cart"
    assert.equal("1 x Latte (Whole milk, Large) @ 470; 1 x Latte (Oat milk, Medium) @ 470; total €9.40", chat:text())
  end)

  it("takes a list for a multiple option, sums its deltas and merges lines whatever the order", function()
    local chat = shop()
    chat:send "add pizza crust=thin toppings=olives+basil"
    assert.equal("added pizza x1 @ 980", chat:text())
    chat:send "add pizza crust=thin toppings=basil+olives 2"
    assert.equal("added pizza x3 @ 980", chat:text())
    assert.equal(1, #chat:cart().lines)
    assert.same({ "olives", "basil" }, chat:cart().lines[1].options.toppings)
    chat:send "add pizza crust=thin toppings=olives"
    assert.equal("added pizza x1 @ 950", chat:text())
    chat:send "add pizza crust=classic"
    assert.equal("added pizza x1 @ 900", chat:text())
    chat:send "cart"
    assert.equal("3 x Pizza (Thin crust, Olives, Basil) @ 980; 1 x Pizza (Thin crust, Olives) @ 950; "
      .. "1 x Pizza (Classic crust) @ 900; total €47.90", chat:text())
  end)

  it("rejects more values than the option's max", function()
    local chat = shop()
    chat:fails "add pizza crust=thin toppings=olives+basil+nduja+ham"
    assert.equal("Something broke.", chat:text())
    assert.matches("flows/main.lua:%d+: cart:add: 'pizza' takes at most 3 toppings, not 4", errors())
    assert.equal(0, #chat:cart().lines)
    chat:send "add pizza crust=thin toppings=olives+basil+nduja"
    assert.equal("added pizza x1 @ 1100", chat:text())
  end)

  it("raises for a required option left out, a list for a single option, or a value chosen twice", function()
    local chat = shop()
    chat:fails "add pizza toppings=olives"
    assert.matches("cart:add: 'pizza' needs a crust", errors())
    chat:fails "add latte size=small+large"
    assert.matches("cart:add: product 'latte' has no size 'small%+large'", errors())
    chat:fails "add pizza crust=thin toppings=olives+olives"
    assert.matches("cart:add: toppings 'olives' is chosen twice for 'pizza'", errors())
    chat:fails "add pizza crust=thin toppings=pineapple"
    assert.matches("flows/main.lua:%d+: cart:add: product 'pizza' has no toppings 'pineapple'", errors())
    assert.equal(0, #chat:cart().lines)
  end)
end)

describe("stock", function()
  -- cart:add and cart:set_qty name what ran short as c:checkout() does:
  -- the product, the choice, the units the cart would want and those left,
  -- and the lines that already draw on it
  it("refuses an option choice that has too few units left, counting what the cart holds", function()
    local chat = shop()
    chat:send "add latte milk=soy"
    assert.equal("out_of_stock latte milk=soy (Latte, Soy milk) wants 1, 0 left, lines ", chat:text())
    chat:send "add latte size=small milk=oat"
    assert.equal("added latte x1 @ 420", chat:text())
    chat:send "add latte size=large milk=oat 2"
    assert.equal("out_of_stock latte milk=oat (Latte, Oat milk) wants 3, 2 left, lines 1", chat:text())
    chat:send "add latte size=large milk=oat"
    assert.equal("added latte x1 @ 510", chat:text())
    chat:send "qty 1 2"
    assert.equal("out_of_stock latte milk=oat (Latte, Oat milk) wants 3, 2 left, lines 1,2", chat:text())
    chat:send "add latte size=large milk=whole 5"
    assert.equal("added latte x5 @ 470", chat:text())
  end)

  it("refuses a product that has too few units left, counting what the cart holds", function()
    local chat = shop()
    chat:send "add muffin 2"
    assert.equal("added muffin x2 @ 250", chat:text())
    chat:send "add muffin"
    assert.equal("out_of_stock muffin (Muffin) wants 3, 2 left, lines 1", chat:text())
    chat:send "qty muffin 3"
    assert.equal("out_of_stock muffin (Muffin) wants 3, 2 left, lines 1", chat:text())
    chat:send "qty muffin 1"
    assert.equal("qty set", chat:text())
    chat:send "add muffin"
    assert.equal("added muffin x2 @ 250", chat:text())
    chat:send "add gone"
    assert.equal("out_of_stock gone (Sold-out Cookie) wants 1, 0 left, lines ", chat:text())
  end)

  it("takes what a paid order bought from the live stock: sold out at once, no reload", function()
    local chat = shop()
    chat:send "show scone"
    assert.matches("^scone Scone stock=1 in=yes", chat:text())
    chat:send "named a scone"
    assert.equal("named: scone in=true, in stock: scone", chat:text())
    chat:send "add scone"
    chat:send "add pizza crust=classic toppings=ham+olives"
    assert.equal("added pizza x1 @ 1040", chat:text())
    chat:send "pay"
    assert.matches("^order %d+ http", chat:text())
    assert.same({ "olives", "ham" }, chat:last_order().lines[2].options.toppings)
    assert.equal(200, (chat:pay()))
    assert.matches("^payment paid %d+$", chat:pushed_text())
    assert.equal(0, #chat:cart().lines)

    local other = shop()
    other:send "show scone"
    assert.matches("^scone Scone stock=0 in=no", other:text())
    other:send "all"
    assert.equal("all: latte,cafe,brulee,pizza,muffin", other:text())
    other:send "find scone"
    assert.equal("found: ", other:text())
    other:send "named a scone"
    assert.equal("named: scone in=false, in stock: -", other:text())
    other:send "tag food"
    assert.equal("tag: pizza,muffin", other:text())
    other:send "add scone"
    assert.equal("out_of_stock scone (Scone) wants 1, 0 left, lines ", other:text())
    -- the option choice's stock went the same way; the other choices stay
    other:send "show pizza"
    assert.truthy(other:says "ham(Ham 90)=0/no")
    assert.truthy(other:says "olives(Olives 50)=-/yes")
    other:send "add pizza crust=thin toppings=ham"
    assert.equal("out_of_stock pizza toppings=ham (Pizza, Ham) wants 1, 0 left, lines ", other:text())
    other:send "add pizza crust=thin toppings=olives"
    assert.equal("added pizza x1 @ 950", other:text())
  end)

  it("checks at checkout what all lines together take from a choice that ran short meanwhile", function()
    local chat = shop()
    chat:send "add latte size=small milk=oat"
    chat:send "add latte size=large milk=oat" -- two lines, both on the last 2 oat milks
    assert.equal(2, #chat:cart().lines)
    local other = shop()
    other:send "add latte size=medium milk=oat"
    other:send "pay"
    assert.equal(200, (other:pay()))
    chat:send "pay"
    assert.equal("no order: out_of_stock latte milk=oat (Latte, Oat milk) wants 2, 1 left, lines 1,2", chat:text())
  end)
end)
