-- parley.conversation: the `c` that every step, intent and rule receives.
-- It reads and writes the session (slots of the current flow, cart,
-- profile, locale), says things through the tone, offers choices and
-- product cards, and builds the transitions a step returns.
local json = require "json"
local money = require "parley.money"
local cart = require "parley.cart"
local util = require "parley.util"

local conversation = {}
local C = {}

-- Transitions returned by steps carry this metatable, so the engine can
-- tell them from a mistaken return value.
conversation.transition = { __name = "transition" }
local function transition(t) return setmetatable(t, conversation.transition) end

local properties = {}

function properties.slots(c)
  local frame = c.session.stack[#c.session.stack]
  if not frame then error("c.slots is only available inside a flow", 3) end
  if c._slots_frame ~= frame then
    c._slots_frame = frame
    c._slots = util.storable_proxy(frame.slots, "slot")
  end
  return c._slots
end

function properties.profile(c)
  c._profile = c._profile or util.storable_proxy(c.session.profile, "profile")
  return c._profile
end

function properties.catalog(c) return c.bot.catalog:view(c.session.locale) end

function properties.cart(c)
  if not c._cart or c._cart.view ~= properties.catalog(c) then
    c._cart = cart.new(c.session.cart, properties.catalog(c))
  end
  return c._cart
end

function properties.locale(c) return c.session.locale end
function properties.user(c) return c.msg.user end
function properties.channel(c) return c.msg.channel end
function properties.persona(c) return c.bot.tone.persona end

function conversation.new(bot, session, msg)
  local c = { bot = bot, session = session, msg = msg, out = json.array(), said = 0, result = nil }
  return setmetatable(c, {
    __index = function(self, key)
      local method = C[key]
      if method then return method end
      local prop = properties[key]
      if prop then return prop(self) end
    end,
  })
end

-- The seed that makes the choice of template variation deterministic for a
-- session, turn and position in the turn.
function C:seed()
  return string.format("%s/%s/%s/%d/%d", self.bot.name, self.msg.channel.name, self.msg.user,
    self.session.turn, self.said)
end

function C:style_info(key, kind)
  return { locale = self.session.locale, persona = self.bot.tone.persona, key = key,
           channel = self.msg.channel.name, kind = kind or "text" }
end

-- Every outgoing text goes through the persona and the style hook: reply
-- texts (kind "text"), choice titles ("choice") and card texts ("card").
function C:styled(text, kind, key)
  if text == nil then return nil end
  return self.bot.tone:finish(text, self:style_info(key, kind))
end

local function new_reply(self, text)
  local reply = { text = text }
  self.out[#self.out + 1] = reply
  return reply
end

local function attach(self, reply, opts, level)
  if opts == nil then return reply end
  if type(opts) ~= "table" then error("the options of c:say are a table {choices =, cards =}", level) end
  if opts.choices then self:choices(opts.choices, reply) end
  if opts.cards then self:cards(opts.cards, nil, reply) end
  return reply
end

-- c:t(key [, vars]) -> the template's text in the session's locale.
function C:t(key, vars)
  if type(key) ~= "string" then error("c:t(key [, vars]): key must be a template name", 2) end
  self.said = self.said + 1
  local text, err = self.bot.tone:render(key, vars, self.session.locale, self:seed())
  if not text then error(err, 2) end
  return text
end

-- c:say(key [, vars [, {choices =, cards =}]]) sends the template `key`,
-- worded by the tone in the shopper's locale.
function C:say(key, vars, opts)
  if type(key) ~= "string" then error("c:say(key [, vars [, opts]]): key must be a template name", 2) end
  if vars ~= nil and type(vars) ~= "table" then error("c:say: vars must be a table", 2) end
  self.said = self.said + 1
  local text, err = self.bot.tone:render(key, vars, self.session.locale, self:seed())
  if not text then error(err, 2) end
  local reply = new_reply(self, self:styled(text, "text", key))
  return attach(self, reply, opts, 3)
end

-- c:say_text(text [, opts]) sends text as it is (still through the style
-- hook). Prefer c:say with a template: the tone decides the words.
function C:say_text(text, opts)
  if type(text) ~= "string" then error("c:say_text(text): text must be a string", 2) end
  local reply = new_reply(self, self:styled(text, "text"))
  return attach(self, reply, opts, 3)
end

local function last_reply(self)
  return self.out[#self.out] or new_reply(self, nil)
end

-- c:choices({ {title =, payload =} | "text", ... }) offers quick replies on
-- the last reply. A shopper can tap one, type its title, or its number.
function C:choices(list, reply)
  if type(list) ~= "table" then error("c:choices expects a list of {title =, payload =}", 2) end
  reply = reply or last_reply(self)
  reply.choices = reply.choices or json.array()
  for i, item in ipairs(list) do
    if type(item) == "string" then item = { title = item, payload = item } end
    if type(item) ~= "table" or type(item.title) ~= "string" then
      error(string.format("choice %d needs a title string", i), 2)
    end
    local payload = item.payload == nil and item.title or item.payload
    if type(payload) ~= "string" then error(string.format("choice %d: payload must be a string", i), 2) end
    reply.choices[#reply.choices + 1] = { title = self:styled(item.title, "choice"), payload = payload }
  end
  return reply
end

local function price_of(amount, currency)
  return { amount = amount, currency = currency }
end

-- c:cards(products [, {payload = fn(p), subtitle = fn(p)}]) shows product
-- cards (a carousel where the channel has one). Items may be products or
-- recommendations ({product =, reason =}).
function C:cards(list, opts, reply)
  if type(list) ~= "table" then error("c:cards expects a list of products", 2) end
  opts = opts or {}
  reply = reply or last_reply(self)
  reply.cards = reply.cards or json.array()
  for i, item in ipairs(list) do
    local p, reason = item, nil
    if item.product then p, reason = item.product, item.reason end
    if type(p) ~= "table" or type(p.sku) ~= "string" then
      error(string.format("card %d is not a product from the catalog", i), 2)
    end
    reply.cards[#reply.cards + 1] = {
      sku = p.sku,
      title = self:styled(p.title, "card"),
      subtitle = self:styled(opts.subtitle and opts.subtitle(p) or reason or p.description, "card"),
      image = p.image,
      price = price_of(p.price, p.currency),
      payload = opts.payload and opts.payload(p) or p.sku,
    }
  end
  return reply
end

-- Choices naming products with their price: {title = "Latte · €3.80", payload = sku}.
function C:product_choices(products)
  local out = {}
  for i, p in ipairs(products) do
    out[i] = { title = p.title .. " · " .. self:price(p.price, p.currency), payload = p.sku }
  end
  return out
end

-- c:price(amount, currency) or c:price(product) -> "€3.80" in the shopper's locale.
function C:price(amount, currency)
  if type(amount) == "table" then amount, currency = amount.price, amount.currency end
  if math.type(amount) ~= "integer" or type(currency) ~= "string" then
    error("c:price(amount, currency): amount is an integer in minor units", 2)
  end
  return money.format(amount, currency, self.session.locale)
end

-- c:recommend{limit =, tag =, include_cart =} -> ranked {product, score,
-- reason} from scripts/rules.lua; reasons that name a template are worded
-- by the tone ({product} is the product's title).
function C:recommend(opts)
  opts = opts or {}
  local view = properties.catalog(self)
  local candidates = {}
  for _, p in ipairs(view:all({ tag = opts.tag })) do
    if opts.include_cart or not properties.cart(self):has(p.sku) then candidates[#candidates + 1] = p end
  end
  local ranked = self.bot.rules:rank(candidates, self, opts)
  for _, r in ipairs(ranked) do
    if type(r.reason) == "string" and self.bot.tone:has(r.reason, self.session.locale) then
      r.reason = self:t(r.reason, { product = r.product.title })
    end
  end
  return ranked
end

-- c:set_locale("ja") switches the shopper's language (one of the bot's).
function C:set_locale(locale)
  if not self.bot.locale_set[locale] then
    error(string.format("c:set_locale: '%s' is not one of this bot's locales", tostring(locale)), 2)
  end
  self.session.locale = locale
  self.session.locale_chosen = true
end

-- Transitions a step can return --------------------------------------------

-- return c:call("checkout" [, args [, "after_checkout"]]) runs a sub-flow;
-- when it finishes with c:done(value), this flow continues at the named
-- step (or re-enters the current one) with c.result = value.
function C:call(flow, args, resume_step)
  if not self.bot.flows[flow] then error(string.format("c:call: there is no flow '%s' (flows/%s.lua)", tostring(flow), tostring(flow)), 2) end
  if args ~= nil then
    local ok, why = util.storable(args)
    if not ok or type(args) ~= "table" then error("c:call: args must be a table of storable values: " .. (why or ""), 2) end
  end
  return transition({ kind = "call", flow = flow, args = args, resume = resume_step })
end

-- return c:done([value]) finishes the current flow.
function C:done(value) return transition({ kind = "done", value = value }) end

-- return c:resume() (from a router intent) asks the interrupted step again.
function C:resume() return transition({ kind = "resume" }) end

-- return c:restart() empties the dialog stack and starts the main flow.
function C:restart() return transition({ kind = "restart" }) end

return conversation
