-- The CSV shop fixture: one step that takes commands, so that specs can
-- drive the catalog (read from catalog.csv), the cart and the live stock:
--   find <words> | named <words> | all [all] | tag <tag> | show <sku> | aliases <sku> | cart | pay
--   add <sku> [option=value[+value...] ...] [qty] | qty <sku> <n> | drop <line>... | clear
local function skus(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = p.sku end
  return table.concat(out, ",")
end

local function units(n) return n == nil and "-" or tostring(n) end

-- "latte stock=- in=yes | milk: whole=-/yes oat=2/yes soy=0/no | ..."
local function show(p)
  local parts = { string.format("%s %s stock=%s in=%s", p.sku, p.title, units(p.stock), p.in_stock and "yes" or "no") }
  local names = {}
  for name in pairs(p.options or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local option = p.options[name]
    local choices = {}
    for i, choice in ipairs(option) do
      choices[i] = string.format("%s(%s %d)=%s/%s", choice.value, choice.title, choice.price, units(choice.stock),
        choice.in_stock and "yes" or "no")
    end
    local flags = (option.multiple and " multiple" or "") .. (option.max and (" max " .. option.max) or "") ..
      (option.required and " required" or "")
    parts[#parts + 1] = name .. flags .. ": " .. table.concat(choices, " ")
  end
  return table.concat(parts, " | ")
end

-- "size=large toppings=olives+basil 2" -> options, qty
local function parse_add(p, words)
  local options, qty = {}, 1
  for word in words:gmatch("%S+") do
    local name, value = word:match("^([%w_]+)=(.*)$")
    if name then
      local option = p and p.options and p.options[name]
      if option and option.multiple then
        local list = {}
        for v in value:gmatch("[^+]+") do list[#list + 1] = v end
        options[name] = list
      else
        options[name] = value
      end
    elseif word:match("^%d+$") then
      qty = math.tointeger(tonumber(word))
    end
  end
  return options, qty
end

local function say_cart(c)
  local lines = {}
  for i, line in ipairs(c.cart:lines()) do
    local options = #line.option_titles > 0 and (" (" .. table.concat(line.option_titles, ", ") .. ")") or ""
    lines[i] = string.format("%d x %s%s @ %d", line.qty, line.title, options, line.unit_price)
  end
  local total, currency = c.cart:total()
  lines[#lines + 1] = "total " .. (currency and c:price(total, currency) or "empty")
  c:say_text(table.concat(lines, "; "))
end

-- A shortage, as c:checkout(), cart:add and cart:set_qty name it:
-- "out_of_stock latte milk=oat (Latte, Oat milk) wants 2, 1 left, lines 1,2"
local function shortage_text(short)
  local choice = short.option and string.format(" %s=%s", short.option, short.value) or ""
  local titles = short.title .. (short.option and (", " .. short.choice_title) or "")
  return string.format("out_of_stock %s%s (%s) wants %d, %d left, lines %s", short.sku, choice, titles,
    short.wanted, short.available, table.concat(short.lines, ","))
end

local commands = {}

function commands.find(c, arg) c:say_text("found: " .. skus(c.catalog:search(arg))) end
function commands.all(c, arg) c:say_text("all: " .. skus(c.catalog:all { all = arg == "all" })) end
function commands.tag(c, arg) c:say_text("tag: " .. skus(c.catalog:by_tag(arg))) end
function commands.named(c, arg)
  local any, stocked = c.catalog:find(arg, nil, { all = true }), c.catalog:find(arg)
  c:say_text(string.format("named: %s in=%s, in stock: %s", any and any.sku or "-", any and tostring(any.in_stock) or "-",
    stocked and stocked.sku or "-"))
end
function commands.show(c, arg) c:say_text(show(c.catalog:get(arg))) end
-- "latte: caffè latte,milchkaffee | milk.oat: oat milk,oatly | ..."
function commands.aliases(c, arg)
  local p = c.catalog:get(arg)
  local parts = { p.sku .. ": " .. table.concat(p.aliases, ",") }
  local names = {}
  for name in pairs(p.options or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    for _, choice in ipairs(p.options[name]) do
      if #choice.aliases > 0 then
        parts[#parts + 1] = name .. "." .. choice.value .. ": " .. table.concat(choice.aliases, ",")
      end
    end
  end
  c:say_text(table.concat(parts, " | "))
end
function commands.cart(c) say_cart(c) end
function commands.clear(c) c.cart:clear() end
function commands.choices(c) c:say("menu", nil, { choices = c:product_choices(c.catalog:all()) }) end

function commands.add(c, arg)
  local sku, rest = arg:match("^(%S+)%s*(.*)$")
  local p = c.catalog:get(sku)
  local options, qty = parse_add(p, rest)
  local line, why, what = c.cart:add(sku, { options = options, qty = qty })
  if not line then
    c:say_text(why == "out_of_stock" and shortage_text(what) or tostring(why))
    return
  end
  c:say_text(string.format("added %s x%d @ %d", sku, line.qty, line.unit_price))
end

function commands.qty(c, arg)
  local sku, n = arg:match("^(%S+)%s+(%d+)$")
  local which = math.tointeger(tonumber(sku)) or sku -- a line number or a sku
  local ok, why, what = c.cart:set_qty(which, math.tointeger(tonumber(n)))
  c:say_text(ok and "qty set" or what and shortage_text(what) or tostring(why))
end


function commands.pay(c)
  local order, why, short = c:checkout()
  if order then
    c:say_text("order " .. order.id .. " " .. order.payment_url)
  elseif why == "out_of_stock" then
    c:say_text("no order: " .. shortage_text(short))
  else
    c:say_text("no order: " .. why)
  end
end

-- drop <line>...: takes lines out by index, the highest first
function commands.drop(c, arg)
  local list = {}
  for n in arg:gmatch("%d+") do list[#list + 1] = math.tointeger(tonumber(n)) end
  table.sort(list, function(a, b) return a > b end)
  for _, i in ipairs(list) do c.cart:remove(i) end
  say_cart(c)
end

return {
  start = function(c)
    c:say "welcome"
    return "shop"
  end,

  shop = {
    answer = function(c, msg)
      if msg.payment then
        c:say_text("payment " .. msg.payment.status .. " " .. msg.payment.order.id)
        return nil
      end
      local cmd, arg = (msg.text or ""):match("^(%S+)%s*(.-)%s*$")
      local run = commands[cmd or ""]
      if run then return run(c, arg) end
      c:say "welcome"
    end,
  },
}
