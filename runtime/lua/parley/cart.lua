-- parley.cart: the shopper's cart, kept in the session as plain data
-- ({id =, currency =, code =, lines = {{sku, qty, options, unit_price}}},
-- where options = {size = "large", toppings = {"olives", "basil"}})
-- and worked on through these methods. Prices are integer minor units; one
-- currency per cart. A discount code (bot.json "discounts") applies to the
-- whole cart while its conditions hold.
local json = require "json"
local util = require "parley.util"
local commerce = require "parley.commerce"
local analytics = require "parley.analytics"

local cart = {}
cart.__index = cart

local EMPTY = {} -- for absent options (only read)

-- Wraps the session's raw cart table; `view` is the locale's catalog view.
-- `version` counts changes made through these methods in this turn, so
-- derived answers (tags, recommendations) can be cached until it moves.
function cart.new(raw, view, discounts)
  raw.lines = raw.lines or json.array()
  return setmetatable({ raw = raw, view = view, version = 0, discounts = discounts or {}, owner = false }, cart)
end

-- cart.of(raw, view, discounts): the cart of a turn. A session's raw cart
-- keeps its cart while it lives (sessions stay in memory between turns),
-- so a turn makes none; what a cart derives from its lines (tags, skus) is
-- forgotten at each turn, and `version` only ever grows.
local carts = setmetatable({}, { __mode = "k" })

function cart.of(raw, view, discounts)
  local self = carts[raw]
  if not self or self.discounts ~= discounts then
    self = cart.new(raw, view, discounts)
    carts[raw] = self
    return self
  end
  if raw.lines == nil then raw.lines = json.array() end
  self.view = view
  -- (forgotten only when known: assigning nil to a key the table lacks costs a call into Lua's table code)
  if self.tags ~= nil then self.tags = nil end
  if self.skus ~= nil then self.skus = nil end
  return self
end

local function changed(self)
  self.version = self.version + 1
  self.tags, self.skus = nil, nil
end

-- An event for the shop's figures, when a turn's conversation owns the cart
-- (self.owner, set per turn by parley.conversation; false between turns).
local function track(self, name, props)
  local c = self.owner
  if c then analytics.record(c, name, props) end
end

local function track_add(self, sku, qty)
  local c = self.owner
  if c then analytics.record(c, "cart_add", { sku = sku, qty = qty, recommended = analytics.was_recommended(c, sku) or nil }) end
end

-- Option values as a line keeps them: a string, or for a multiple option a
-- list in the catalog's order, so that the order a shopper named them in
-- does not make two lines of one thing.
local function same_value(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function same_options(a, b)
  for k, v in pairs(a) do if not same_value(b[k], v) then return false end end
  for k, v in pairs(b) do if not same_value(a[k], v) then return false end end
  return true
end

local function product_of(self, product_or_sku)
  if type(product_or_sku) == "table" then return product_or_sku end
  local p = self.view:get(product_or_sku)
  if not p then error(string.format("cart:add: no product '%s' in the catalog", tostring(product_or_sku)), 3) end
  return p
end

local function values_of(v)
  if type(v) == "table" then return v end
  return { v }
end

-- Whether value is one of the option values v (a value, a list, or nil).
local function holds(v, value)
  if type(v) ~= "table" then return v ~= nil and v == value end
  for i = 1, #v do
    if v[i] == value then return true end
  end
  return false
end

local function no_choice(p, name, value)
  error(string.format("cart:add: product '%s' has no %s '%s'", p.sku, name, tostring(value)), 5)
end

-- The checked value(s) of option `name` for the line (nil: none chosen).
local function chosen(p, name, value)
  local option = (p.options or EMPTY)[name]
  if not option then error(string.format("cart:add: product '%s' has no option '%s'", p.sku, tostring(name)), 4) end
  if not option.multiple then
    if type(value) == "table" then
      error(string.format("cart:add: the %s of '%s' is one choice, not a list", name, p.sku), 4)
    end
    if not p:option(name, value) then no_choice(p, name, value) end
    return value
  end
  local wanted, count = {}, 0
  for _, v in ipairs(values_of(value)) do
    if not p:option(name, v) then no_choice(p, name, v) end
    if wanted[v] then error(string.format("cart:add: %s '%s' is chosen twice for '%s'", name, tostring(v), p.sku), 4) end
    wanted[v] = true
    count = count + 1
  end
  if option.max and count > option.max then
    error(string.format("cart:add: '%s' takes at most %d %s, not %d", p.sku, option.max, name, count), 4)
  end
  local list = {}
  for _, choice in ipairs(option) do
    if wanted[choice.value] then list[#list + 1] = choice.value end
  end
  return #list > 0 and list or nil
end

-- The line's options and unit price for opts.options; raises for values
-- the catalog does not have, too many, or a required option left out.
local function priced_options(p, given)
  local options, unit = {}, p.price
  for name, value in pairs(given or EMPTY) do
    local v = chosen(p, name, value)
    options[name] = v
    if type(v) == "table" then
      for i = 1, #v do unit = unit + p:option(name, v[i]).price end
    elseif v ~= nil then
      unit = unit + p:option(name, v).price
    end
  end
  for name, option in pairs(p.options or EMPTY) do
    if option.required and options[name] == nil then
      error(string.format("cart:add: '%s' needs a %s", p.sku, name), 3)
    end
  end
  return options, unit
end

-- Units of the product (or, with name and value, of that choice of it)
-- already in the cart.
local function in_cart(self, sku, name, value)
  local n, lines = 0, self.raw.lines
  for i = 1, #lines do
    local line = lines[i]
    if line.sku == sku and (name == nil or holds((line.options or EMPTY)[name], value)) then
      n = n + line.qty
    end
  end
  return n
end

-- What ran short, named as c:checkout() names it (docs/commerce.md): the
-- product (sku, its title in the shopper's locale) and, for an option
-- choice, option, value and choice_title; the units the cart would want
-- with this change and the units left; the cart lines that draw on it.
local function shortage(self, p, wanted, left, name, value, choice)
  local shown = self.view:get(p.sku) or p
  return {
    sku = p.sku, title = shown.title, option = name, value = value,
    choice_title = choice and (shown:option(name, value) or choice).title or nil,
    wanted = wanted, available = math.max(left, 0),
    lines = self:lines_with(p.sku, name, value),
  }
end

-- The shortage of option name = value if that choice has fewer units left
-- than the cart would hold with qty more.
local function short_choice(self, p, name, value, qty)
  local choice = p:option(name, value)
  local left = choice and choice.stock
  if left == nil then return nil end
  local wanted = in_cart(self, p.sku, name, value) + qty
  if wanted > left then return shortage(self, p, wanted, left, name, value, choice) end
end

-- The shortage of the product or of a choice of it with fewer units left
-- than the cart would hold with qty more, or nil.
local function short_of(self, p, options, qty)
  local left = p.stock
  local wanted = left ~= nil and in_cart(self, p.sku) + qty
  if wanted and wanted > left then return shortage(self, p, wanted, left) end
  local names = util.sorted_keys(options)
  for k = 1, #names do
    local name = names[k]
    local v, short = options[name], nil
    if type(v) ~= "table" then
      if v ~= nil then short = short_choice(self, p, name, v, qty) end
    else
      for i = 1, #v do
        short = short_choice(self, p, name, v[i], qty)
        if short then break end
      end
    end
    if short then return short end
  end
end

-- cart:add(product or sku [, {qty = 1, options = {size = "large",
-- toppings = {"olives", "basil"}}}]) -> line, or nil, "out_of_stock" and
-- the shortage of the product or option choice that has too few units left
-- (what the cart already holds counts), as c:checkout() names one. Option deltas are added to the unit price. An
-- unknown option value, a list for a single option, more values than a
-- multiple option's max, a required option left out, or a product in
-- another currency than the cart are mistakes and raise.
function cart:add(product_or_sku, opts)
  opts = opts or EMPTY
  local p = product_of(self, product_or_sku)
  local qty = opts.qty or 1
  if math.type(qty) ~= "integer" or qty < 1 then error("cart:add: qty must be a positive integer", 2) end
  local options, unit = priced_options(p, opts.options)
  if #self.raw.lines > 0 and self.raw.currency ~= p.currency then
    error(string.format("cart:add: the cart is in %s but '%s' is priced in %s", self.raw.currency, p.sku, p.currency), 2)
  end
  local short = short_of(self, p, options, qty)
  if short then return nil, "out_of_stock", short end
  self.raw.currency = p.currency
  -- a cart gets an id with its first item: reminders are once per cart
  self.raw.id = self.raw.id or string.format("%d-%d", os.time(), #self.raw.lines + self.version)
  changed(self)
  local lines = self.raw.lines
  for i = 1, #lines do
    local line = lines[i]
    if line.sku == p.sku and same_options(line.options, options) then
      line.qty = line.qty + qty
      track_add(self, p.sku, qty)
      return line
    end
  end
  local line = { sku = p.sku, qty = qty, options = options, unit_price = unit, title = p.title }
  table.insert(self.raw.lines, line)
  track_add(self, p.sku, qty)
  return line
end

local function line_index(self, which)
  local lines = self.raw.lines
  -- an index (a sku is a string, which no line is stored under)
  if lines[which] ~= nil and math.type(which) == "integer" then return which end
  for i = 1, #lines do
    if lines[i].sku == which then return i end
  end
end

-- Removes a line by index or sku; returns true if there was one.
function cart:remove(which)
  local i = line_index(self, which)
  if not i then return false end
  local line = table.remove(self.raw.lines, i)
  changed(self)
  track(self, "cart_remove", { sku = line.sku, qty = line.qty })
  return true
end

-- Sets the quantity of a line (by index or sku); 0 removes it. Returns
-- true, false when there is no such line, or nil, "out_of_stock" and the
-- shortage (as cart:add's) when more units are asked for than are left.
function cart:set_qty(which, qty)
  if math.type(qty) ~= "integer" or qty < 0 then error("cart:set_qty: qty must be an integer >= 0", 2) end
  local i = line_index(self, which)
  if not i then return false end
  local line = self.raw.lines[i]
  local p = self.view:get(line.sku)
  local short = p and qty > line.qty and short_of(self, p, line.options or {}, qty - line.qty)
  if short then return nil, "out_of_stock", short end
  local was = line.qty
  if qty == 0 then table.remove(self.raw.lines, i) else line.qty = qty end
  changed(self)
  if qty > was then track_add(self, line.sku, qty - was)
  elseif qty < was then track(self, "cart_remove", { sku = line.sku, qty = was - qty }) end
  return true
end

-- cart:lines_with(sku [, option, value]) -> the indexes of the lines of
-- that product (and, given option and value, that hold that choice), in
-- order: what c:checkout()'s shortage names, for a flow to take out.
function cart:lines_with(sku, name, value)
  local out, lines = {}, self.raw.lines
  for i = 1, #lines do
    local line = lines[i]
    if line.sku == sku and (name == nil or holds((line.options or EMPTY)[name], value)) then out[#out + 1] = i end
  end
  return out
end

function cart:clear()
  self.raw.lines = json.array()
  self.raw.currency = nil
  self.raw.code = nil
  self.raw.id = nil
  self.raw.reminded = nil
  changed(self)
end

function cart:is_empty() return #self.raw.lines == 0 end

-- Number of items (sum of quantities).
function cart:count()
  local n, lines = 0, self.raw.lines
  for i = 1, #lines do n = n + lines[i].qty end
  return n
end

-- (the skus in the cart are kept, like the tags below, until it changes)
function cart:has(sku) -- line_index(self, sku) ~= nil
  local skus, lines = self.skus, self.raw.lines
  if not skus then
    skus = {}
    for i = 1, #lines do skus[lines[i].sku] = true end
    self.skus = skus
  end
  if skus[sku] then return true end
  return lines[sku] ~= nil and math.type(sku) == "integer"
end

-- Whether any product in the cart carries the tag.
function cart:has_tag(tag)
  local tags = self.tags
  if not tags then
    tags = {}
    local lines = self.raw.lines
    for i = 1, #lines do
      local p = self.view:get(lines[i].sku)
      if p then for t in pairs(p.tagset) do tags[t] = true end end
    end
    self.tags = tags
  end
  return tags[tag] == true
end

-- The lines as the shopper should read them: title (in the session's
-- locale), option titles, qty, unit price and line total.
local function option_title(p, name, value)
  local choice = p and p:option(name, value)
  return choice and choice.title or value
end

function cart:lines()
  local out, lines = {}, self.raw.lines
  for i = 1, #lines do
    local line = lines[i]
    local p = self.view:get(line.sku)
    local option_titles = {}
    local options = line.options
    if options then
      local names = util.sorted_keys(options)
      for k = 1, #names do
        local name = names[k]
        local v = options[name]
        if type(v) ~= "table" then
          if v ~= nil then option_titles[#option_titles + 1] = option_title(p, name, v) end
        else
          for j = 1, #v do option_titles[#option_titles + 1] = option_title(p, name, v[j]) end
        end
      end
    end
    out[i] = {
      index = i, sku = line.sku, qty = line.qty, options = line.options,
      title = p and p.title or line.title, option_titles = option_titles,
      unit_price = line.unit_price, total = line.unit_price * line.qty,
      currency = self.raw.currency,
    }
  end
  return out
end

function cart:subtotal()
  local sum, lines = 0, self.raw.lines
  for i = 1, #lines do
    local line = lines[i]
    sum = sum + line.unit_price * line.qty
  end
  return sum, self.raw.currency
end

-- "2027-01-31" -> the last second of that day (UTC), or a number as it is.
local function expiry_of(v)
  if type(v) == "number" then return v end
  local y, m, d = tostring(v):match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  -- days from the civil date (Howard Hinnant's algorithm)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468) * 86400 + 86399
end

-- Why a code cannot apply to this cart now, or nil when it can.
function cart:code_problem(code)
  local rule = self.discounts[code]
  if not rule then return "unknown" end
  local expires = rule.expires and expiry_of(rule.expires)
  if expires and os.time() > expires then return "expired" end
  local subtotal, currency = self:subtotal()
  if rule.min_total and subtotal < rule.min_total then return "minimum" end
  if rule.amount and rule.currency and currency and rule.currency ~= currency then return "currency" end
  return nil
end

-- Whether this shopper already used a once-per-shopper code.
function cart:code_used(code)
  local rule = self.discounts[code]
  return rule and rule.once_per_shopper and commerce.discount_used(code) or false
end

-- cart:apply_code("WELCOME10") -> true, or nil and "unknown", "expired",
-- "minimum" (basket below min_total), "currency" or "used".
function cart:apply_code(code)
  if type(code) ~= "string" then error("cart:apply_code(code) takes a string", 2) end
  code = code:upper():gsub("%s", "")
  local problem = self:code_problem(code)
  if not problem and self:code_used(code) then problem = "used" end
  if problem then return nil, problem end
  if self.raw.code ~= code then track(self, "code_applied", { code = code }) end
  self.raw.code = code
  changed(self)
  return true
end

function cart:remove_code()
  self.raw.code = nil
  changed(self)
end

-- {subtotal, discount, total, currency, code}: the code's discount counts
-- only while its conditions hold (a basket that fell under the minimum
-- loses it until it grows again).
function cart:totals()
  local subtotal, currency = self:subtotal()
  local code = self.raw.code
  local discount = 0
  if code and not self:code_problem(code) then
    local rule = self.discounts[code]
    if rule.percent then discount = subtotal * rule.percent // 100 end
    if rule.amount then discount = rule.amount end
    if discount > subtotal then discount = subtotal end
  end
  return { subtotal = subtotal, discount = discount, total = subtotal - discount, currency = currency, code = code }
end

-- Total amount after any discount, and currency (nil currency when empty).
function cart:total()
  local t = self:totals()
  return t.total, t.currency
end

return cart
