-- parley.products: the bot's catalog as flows see it. Products come from the
-- C catalog (parley.catalog); each locale gets its own read-only view in
-- which title, description and option titles are already in that language,
-- and aliases (p.aliases, choice.aliases) are the ones of that language.
-- p.stock / p.in_stock and choice.stock / choice.in_stock are live: they
-- come from the bot's stock (what paid orders left) each time they are read.
local native = require "parley.catalog"
local commerce = require "parley.commerce"
local util = require "parley.util"

local products = {}

-- Live stock: a product or choice with a count in the catalog file reads
-- its units left from the bot's live stock (commerce.stock, which paid
-- orders draw from) every time it is asked, so what sold out disappears
-- without a reload. Without a count it is unlimited: stock is nil.
local function live_stock(key, catalog_count)
  if catalog_count == nil then return nil end
  local left = commerce.stock(key)
  if left == nil then return catalog_count end -- no live stock here (outside a bot)
  return left
end

local Product = {}
local tracked = setmetatable({}, { __mode = "k" }) -- option choice -> {key, count}

local function stock_field(t, k)
  local track = tracked[t]
  if k == "stock" then return track and live_stock(track.key, track.count) end
  if k == "in_stock" then
    local left = track and live_stock(track.key, track.count)
    return left == nil or left > 0
  end
end

local Choice = { __index = stock_field }

function Product:has_tag(tag) return self.tagset[tag] == true end

-- The choice of option `name` whose value is `value`, or nil.
function Product:option(name, value)
  local options = self.options
  local list = options and options[name]
  if list then
    for i = 1, #list do
      local choice = list[i]
      if choice.value == value then return choice end
    end
  end
end

-- A product's metatable: its methods are found in a table (so p:has_tag
-- calls no metamethod), whose own __index gives the live stock fields
-- (those of live_stock above). A product without a count in the catalog is
-- always in stock, so reading that needs no call either.
local function product_metatable(key, count)
  local fields = { has_tag = Product.has_tag, option = Product.option }
  if count == nil then
    fields.in_stock = true -- and stock is nil
  else
    setmetatable(fields, { __index = function(_, k)
      if k == "stock" or k == "in_stock" then
        local left = commerce.stock(key)
        if left == nil then left = count end -- no live stock here (outside a bot)
        if k == "stock" then return left end
        return left > 0
      end
    end })
  end
  return { __index = fields }
end

-- A localized text: the locale's own, its language's ("en" for "en-GB"),
-- the one for every other locale ("*"), the bot's default, else the first.
local function localize(v, locale, default)
  if type(v) ~= "table" then return v end
  local lang = locale:match("^(%a+)")
  if v[locale] then return v[locale] end
  if v[lang] then return v[lang] end
  if v["*"] then return v["*"] end
  if v[default] then return v[default] end
  local keys = util.sorted_keys(v)
  return v[keys[1]]
end

-- The aliases a shopper of `locale` may use (the catalog holds them as
-- locale -> list, "*" for every locale): the locale's own, its language's
-- ("es" for "es-419"), then every locale's, each once, in that order. A
-- new list, empty when there are none.
local NO_ALIASES = setmetatable({}, { __newindex = function() error("a product's aliases are read-only", 2) end })

local function add_aliases(out, seen, list)
  if not list then return end
  for _, alias in ipairs(list) do
    if not seen[alias] then
      seen[alias] = true
      out[#out + 1] = alias
    end
  end
end

local function aliases_for(by_locale, locale)
  -- (most products have none, or one list that applies: no work, no copy)
  if type(by_locale) ~= "table" or next(by_locale) == nil then return NO_ALIASES end
  local lang = locale:match("^(%a+)")
  local own, of_lang, all = by_locale[locale], lang ~= locale and by_locale[lang] or nil, by_locale["*"]
  local only = (own and 1 or 0) + (of_lang and 1 or 0) + (all and 1 or 0)
  if only == 0 then return NO_ALIASES end
  if only == 1 then return own or of_lang or all end
  local out, seen = {}, {}
  add_aliases(out, seen, own)
  add_aliases(out, seen, of_lang)
  add_aliases(out, seen, all)
  return out
end

-- An option as flows see it: the list of its choices, for ipairs, with
-- the option's multiple, max and required as fields of the list.
local function localize_option(raw, sku, name, locale, default)
  local spec = raw.choices and raw or { choices = raw }
  local list = { multiple = spec.multiple == true, max = spec.max, required = spec.required == true }
  for i, choice in ipairs(spec.choices) do
    local c = setmetatable({
      value = choice.value,
      title = localize(choice.title, locale, default) or choice.value,
      aliases = aliases_for(choice.aliases, locale),
      price = choice.price or 0,
    }, Choice)
    if choice.stock ~= nil then tracked[c] = { key = sku .. "/" .. name .. "=" .. choice.value, count = choice.stock } end
    list[i] = c
  end
  return list
end

local function localize_product(raw, position, locale, default)
  local p = setmetatable({
    sku = raw.sku,
    title = localize(raw.title, locale, default),
    description = localize(raw.description, locale, default),
    price = raw.price,
    currency = raw.currency,
    image = raw.image,
    tags = raw.tags or {},
    aliases = aliases_for(raw.aliases, locale),
    tagset = {},
    position = position,
  }, product_metatable(raw.sku, raw.stock))
  for _, tag in ipairs(p.tags) do p.tagset[tag] = true end
  if raw.options then
    p.options = {}
    for name, option in pairs(raw.options) do
      p.options[name] = localize_option(option, raw.sku, name, locale, default)
    end
  end
  return p
end

local View = {}
View.__index = View

-- products.new(default_locale) -> catalog with :view(locale)
function products.new(default_locale)
  local raw = native.products()
  local self = { raw = raw, index = {}, views = {}, default = default_locale }
  for i, p in ipairs(raw) do self.index[p.sku] = i end
  return setmetatable(self, { __index = products })
end

function products:view(locale)
  local v = self.views[locale]
  if v then return v end
  local list = {}
  for i, raw in ipairs(self.raw) do list[i] = localize_product(raw, i, locale, self.default) end
  v = setmetatable({ list = list, catalog = self, locale = locale, index = self.index, tagged = {} }, View)
  -- the methods as fields of the view's own, so that c.catalog:get(sku) is
  -- a plain lookup, not a detour through the metatable
  for name, fn in pairs(View) do
    if type(fn) == "function" then v[name] = fn end
  end
  self.views[locale] = v
  return v
end

-- The product with this sku, or nil (the index holds only string skus).
function View:get(sku)
  local i = self.index[sku]
  return i and self.list[i] or nil
end

local function wanted(p, opts)
  if opts.tag and not p.tagset[opts.tag] then return false end
  if not opts.all and not p.in_stock then return false end
  return true
end

-- The view's products with the tag, in catalog order, kept per tag (the
-- catalog does not change in a loaded state).
local function tagged(view, tag)
  local list = view.tagged[tag]
  if list then return list end
  list = {}
  local all = view.list
  for i = 1, #all do
    local p = all[i]
    if p.tagset[tag] then list[#list + 1] = p end
  end
  if tag == tag then view.tagged[tag] = list end -- (NaN is no key)
  return list
end

-- The products with the tag (every one without), in stock unless `all`: a
-- new list.
local function pick(view, tag, all)
  local from = tag and tagged(view, tag) or view.list
  local out = { nil, nil, nil, nil } -- (room for four without growing)
  for i = 1, #from do
    local p = from[i]
    if all or p.in_stock then out[#out + 1] = p end
  end
  return out
end

-- Every product (in stock unless opts.all), in catalog order.
function View:all(opts)
  if not opts then return pick(self, nil, nil) end
  return pick(self, opts.tag, opts.all)
end

-- Products carrying the tag (in stock unless opts.all), in catalog order.
function View:by_tag(tag, opts)
  return pick(self, tag, opts and opts.all)
end

-- Products matching the shopper's words, best match first: by title (in
-- any locale), tag, word beginning or description. opts.tag narrows to a
-- tag, opts.named keeps only products whose title the words name,
-- opts.all includes sold-out products, opts.limit caps the list.
function View:search(words, opts)
  opts = opts or {}
  local out = {}
  if type(words) ~= "string" or words == "" then return out end
  for _, hit in ipairs(native.search(words, 100)) do
    local p = self:get(hit.sku)
    if p and wanted(p, opts) and (hit.named or not opts.named) then out[#out + 1] = p end
    if opts.limit and #out >= opts.limit then break end
  end
  return out
end

-- The product the shopper's words name (by its title, not merely a tag or
-- a word of its description), or nil; in stock only unless opts.all (a
-- flow that finds sold-out products too can say "sold out" rather than
-- "what?").
function View:find(words, tag, opts)
  return self:search(words, { tag = tag, named = true, limit = 1, all = opts and opts.all })[1]
end

return products
