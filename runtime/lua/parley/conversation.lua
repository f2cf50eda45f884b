-- parley.conversation: the `c` that every step, intent and rule receives.
-- It reads and writes the session (slots of the current flow, cart,
-- profile, locale), says things through the tone, offers choices and
-- product cards, and builds the transitions a step returns.
local _, internal = ...
local json = require "json"
local money = require "parley.money"
local commerce = require "parley.commerce"
local cart = require "parley.cart"
local util = require "parley.util"
local analytics = require "parley.analytics"
local understand = require "parley.understand"
local llm = require "parley.understand_llm"

local conversation = {}
local C = {}
local EMPTY = {} -- absent options (only read)

-- Transitions returned by steps carry this metatable, so the engine can
-- tell them from a mistaken return value.
conversation.transition = { __name = "transition" }
local function transition(t) return setmetatable(t, conversation.transition) end

local mt = { __index = C }

-- Builds the `c` of one turn. Its fields are plain values so that reading
-- them costs nothing: slots (the current flow's, kept up to date by the
-- engine through conversation.refresh), profile, cart, catalog (in the
-- shopper's locale), locale, user, channel, persona (the locale's), msg, result. What only
-- some turns need is set when first needed: result, recommended, the
-- effects (jobs, handoff: nil while there are none) and seed_base (see
-- tone:render).
local slot_proxies, profile_proxies = util.proxies.slot, util.proxies.profile

function conversation.new(bot, session, msg)
  local locale = session.locale
  local catalog = bot.catalog
  local view = catalog.views[locale] or catalog:view(locale)
  local stack = session.stack
  local frame = stack[#stack]
  local slots
  if frame then
    local raw = frame.slots
    slots = slot_proxies[raw] or util.storable_proxy(raw, "slot")
  end
  local profile = session.profile
  local the_cart = cart.of(session.cart, view, bot.discounts)
  local tone_ = bot.tone
  local c = setmetatable({
    bot = bot, session = session, msg = msg, out = { nil, nil }, said = 0, frame = frame, slots = slots,
    locale = locale, user = msg.user, channel = msg.channel,
    persona = tone_.personas[locale] or tone_.persona, -- (tone:persona_of(locale))
    catalog = view,
    cart = the_cart,
    profile = profile_proxies[profile] or util.storable_proxy(profile, "profile"),
  }, mt)
  if bot.analytics_on then the_cart.owner = c end
  return c
end

-- The turn's effects for the commit ({jobs = {...}, handoff =, recorded =}),
-- made when the turn first has one.
function conversation.effects(c)
  local effects = c.effects
  if not effects then
    effects = { jobs = json.array() }
    c.effects = effects
  end
  return effects
end

-- Points c.slots at the top frame of the dialog stack; the engine calls it
-- whenever the stack may have changed.
function conversation.refresh(c)
  local frame = c.session.stack[#c.session.stack]
  if frame == c.frame then return end
  c.frame = frame
  if frame then
    local raw = frame.slots
    c.slots = slot_proxies[raw] or util.storable_proxy(raw, "slot")
  else
    c.slots = nil
  end
end

-- Renders key for this turn (the n-th text of the turn picks the variation).
local function render(self, key, vars, level)
  local n = self.said + 1
  self.said = n
  local text, err = self.bot.tone:render(key, vars, self.locale, self, n)
  if not text then error(err, level + 1) end
  return text
end

-- Every outgoing text goes through the persona and the style hook: reply
-- texts (kind "text"), choice titles ("choice") and card texts ("card").
function C:styled(text, kind, key)
  if text == nil then return nil end
  return self.bot.tone:finish(text, self, kind or "text", key)
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
  if opts.link then self:link(opts.link.title, opts.link.url, reply) end
  if opts.image then self:image(opts.image, reply) end
  return reply
end

-- c:t(key [, vars]) -> the template's text in the session's locale.
function C:t(key, vars)
  if type(key) ~= "string" then error("c:t(key [, vars]): key must be a template name", 2) end
  return render(self, key, vars, 2)
end

-- c:say(key [, vars [, {choices =, cards =}]]) sends the template `key`,
-- worded by the tone in the shopper's locale.
local SAY_KEY = "c:say(key [, vars [, opts]]): key must be a template name"

function C:say(key, vars, opts)
  -- (the key is checked first, as always, but only where it can be wrong:
  -- tone:say finds no template for a key that is not a string)
  if vars ~= nil and type(vars) ~= "table" then
    if type(key) ~= "string" then error(SAY_KEY, 2) end
    error("c:say: vars must be a table", 2)
  end
  -- (render, then finish: in one call)
  local text, err = self.bot.tone:say(self, key, vars)
  if not text then
    if type(key) ~= "string" then error(SAY_KEY, 2) end
    error(err, 2)
  end
  local reply, out = { text = text }, self.out
  out[#out + 1] = reply
  if self.bot.not_understood_keys[key] then analytics.said(self, key) end
  if opts == nil then return reply end
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
local add_choices = internal.choices -- (the items' checks, in one call)

local function bad_choice(i, why)
  if why == "title" then return string.format("choice %d needs a title string", i) end
  return string.format("choice %d: payload must be a string", i)
end

function C:choices(list, reply)
  if type(list) ~= "table" then error("c:choices expects a list of {title =, payload =}", 2) end
  reply = reply or last_reply(self)
  local choices = reply.choices or json.array { nil, nil, nil, nil } -- (room for four)
  reply.choices = choices
  local from = #choices
  local tone_ = self.bot.tone
  if tone_.style then
    -- a choice joins the list once the style hook has had its title (a
    -- hook that fails leaves those before it), as it always did
    local items = {}
    local n, bad, why = add_choices(list, items, 0)
    for k = 1, n do
      local choice = items[k]
      choice.title = tone_:finish(choice.title, self, "choice")
      choices[from + k] = choice
    end
    if bad then error(bad_choice(bad, why), 2) end
    return reply
  end
  -- the items up to the first nil (or a bad one), appended as they are
  local to, bad, why = add_choices(list, choices, from)
  if to > from and (tone_.personas[self.locale] or tone_.persona).emoji == false then -- (tone:persona_of)
    tone_:strip_titles(choices, from + 1, to)
  end
  if bad then error(bad_choice(bad, why), 2) end
  return reply
end

-- c:cards(products [, {payload = fn(p), subtitle = fn(p)}]) shows product
-- cards (a carousel where the channel has one). Items may be products or
-- recommendations ({product =, reason =}).
function C:cards(list, opts, reply)
  if type(list) ~= "table" then error("c:cards expects a list of products", 2) end
  opts = opts or EMPTY
  reply = reply or last_reply(self)
  reply.cards = reply.cards or json.array()
  local i, item = 1, list[1]
  local recommended = false
  while item ~= nil do
    local p, reason = item, nil
    if item.product then p, reason, recommended = item.product, item.reason, true end
    if type(p) ~= "table" or type(p.sku) ~= "string" then
      error(string.format("card %d is not a product from the catalog", i), 2)
    end
    local cards = reply.cards
    cards[#cards + 1] = {
      sku = p.sku,
      title = self:styled(p.title, "card"),
      subtitle = self:styled(opts.subtitle and opts.subtitle(p) or reason or p.description, "card"),
      image = p.image,
      price = { amount = p.price, currency = p.currency },
      payload = opts.payload and opts.payload(p) or p.sku,
    }
    i = i + 1
    item = list[i]
  end
  if i > 1 and self.bot.analytics_on then analytics.shown(self, list, i - 1, recommended) end
  return reply
end

-- c:link(title, url) adds a link to the last reply (a payment link: a
-- button where the channel has one, else the URL in the text).
function C:link(title, url, reply)
  if type(title) ~= "string" or type(url) ~= "string" then error("c:link(title, url) takes two strings", 2) end
  reply = reply or last_reply(self)
  reply.link = { title = self:styled(title, "choice"), url = url }
  return reply
end

-- c:image(url) adds an image to the last reply.
function C:image(url, reply)
  if type(url) ~= "string" then error("c:image(url) takes a URL string", 2) end
  reply = reply or last_reply(self)
  reply.image = url
  return reply
end

-- Choices naming products with their price: {title = "Latte · €3.80", payload = sku}.
function C:product_choices(products)
  local out = { nil, nil, nil, nil } -- (room for four without growing)
  local i, p = 1, products[1]
  local recommended = p ~= nil and p.product ~= nil
  while p ~= nil do
    if p.product then p = p.product end -- a recommendation {product, reason}
    out[i] = { title = p.title .. " · " .. self:price(p.price, p.currency), payload = p.sku }
    i = i + 1
    p = products[i]
  end
  if i > 1 and self.bot.analytics_on then analytics.shown(self, products, i - 1, recommended) end
  return out
end

-- Prices as money.format wrote them, by currency, locale and amount: it
-- depends on nothing else, and a bot shows the same few prices again and
-- again. Forgotten all at once when PRICES_KEPT are kept.
local prices, prices_kept, PRICES_KEPT = {}, 0, 1000

-- c:price(amount, currency) or c:price(product) -> "€3.80" in the shopper's locale.
function C:price(amount, currency)
  local bad = false
  if math.type(amount) ~= "integer" then
    if type(amount) == "table" then amount, currency = amount.price, amount.currency end
    bad = math.type(amount) ~= "integer"
  end
  local locale = self.locale
  if not bad then
    local by_locale = prices[currency] -- (only a string currency has any)
    local by_amount = by_locale and by_locale[locale]
    local text = by_amount and by_amount[amount]
    if text then return text end
  end
  if bad or type(currency) ~= "string" then
    error("c:price(amount, currency): amount is an integer in minor units", 2)
  end
  local text = money.format(amount, currency, locale)
  if locale ~= nil then
    if prices_kept >= PRICES_KEPT then prices, prices_kept = {}, 0 end
    local by_locale = prices[currency]
    if not by_locale then
      by_locale = {}
      prices[currency] = by_locale
    end
    local by_amount = by_locale[locale]
    if not by_amount then
      by_amount = {}
      by_locale[locale] = by_amount
    end
    by_amount[amount] = text
    prices_kept = prices_kept + 1
  end
  return text
end

-- c:recommend{limit =, tag =, include_cart =} -> ranked {product, score,
-- reason} from scripts/rules.lua; reasons that name a template are worded
-- by the tone ({product} is the product's title).
-- The same question within one turn, with the cart unchanged, gets the
-- same (cached) answer: flows often rank once to decide and once to show.
function C:recommend(opts)
  opts = opts or {}
  local memo_key = tostring(opts.tag) .. "|" .. tostring(opts.limit) .. "|" .. tostring(opts.include_cart) .. "|" ..
    self.cart.version
  self.recommended = self.recommended or {}
  local ranked = self.recommended[memo_key]
  if ranked then return ranked end
  local candidates = self.catalog:by_tag(opts.tag) -- = all({tag = opts.tag}), without the table
  if not opts.include_cart then
    -- the products in the cart are left out (the list is a new one: filtered in place)
    local n, cart_ = 0, self.cart
    for i = 1, #candidates do
      local p = candidates[i]
      candidates[i] = nil
      if not cart_:has(p.sku) then
        n = n + 1
        candidates[n] = p
      end
    end
  end
  ranked = self.bot.rules:rank(candidates, self, opts)
  local tone_ = self.bot.tone
  for i = 1, #ranked do
    local r = ranked[i]
    if type(r.reason) == "string" and tone_:has(r.reason, self.locale) then
      r.reason = self:t(r.reason, { product = r.product.title })
    end
  end
  self.recommended[memo_key] = ranked
  return ranked
end

-- c:understand([text]) -> what the words (the message's text when not
-- given) say in the bot's own terms: the router's intent, the products
-- with quantities and options, yes/no, a choice number, a discount code
-- (see docs/understanding.md). Asks the bot's language model, when it has
-- one, only where the parser is not confident; validates what it says.
function C:understand(words)
  if words == nil then words = self.msg and self.msg.text end
  if words ~= nil and type(words) ~= "string" then
    error("c:understand: the text to understand must be a string", 2)
  end
  local bot = self.bot
  -- a flow and the flow it calls often ask about the same words in one
  -- turn: the answer is the same (the same table)
  local memo = self.understood
  if memo and memo.words == (words or "") and memo.locale == self.locale then return memo.result end
  local result = understand.parse(bot, self.catalog, words or "", self.locale, bot.intent_by_phrase)
  if not result.confident and words and words:find("%S") and llm.enabled() then
    local world = { locale = self.locale, view = self.catalog, intents = bot.intents, codes = util.sorted_keys(bot.discounts),
                    bot = bot.name }
    local better = llm.ask(words, result, world) -- (a reload makes a new state: its cache starts empty)
    if better then result = better end
  end
  self.understood = { words = words or "", locale = self.locale, result = result }
  return result
end

-- c:set_locale("ja") switches the shopper's language (one of the bot's).
function C:set_locale(locale)
  if not self.bot.locale_set[locale] then
    error(string.format("c:set_locale: '%s' is not one of this bot's locales", tostring(locale)), 2)
  end
  self.session.locale = locale
  self.session.locale_chosen = true
  self.locale = locale
  self.persona = self.bot.tone:persona_of(locale)
  self.catalog = self.bot.catalog:view(locale)
  self.cart.view = self.catalog
end

-- c:track(name [, props]) records an event of the bot's own for its
-- analytics, committed with the turn (docs/analytics.md).
function C:track(name, props)
  analytics.track(self, name, props)
end

-- Orders and jobs -----------------------------------------------------------

-- What c:checkout() says ran short, from what parley.commerce found (the
-- stock key "sku" or "sku/option=value", the first order line drawing on
-- it, the units all lines want and the units left): the product and, for
-- an option choice, the option's name, the value and the choice's title in
-- the shopper's locale, and every cart line that draws on it.
local function shortage(self, found)
  local first = self.session.cart.lines[found.line]
  local sku = first.sku
  local p = self.catalog:get(sku)
  local short = { sku = sku, title = p and p.title or first.title, wanted = found.wanted,
                  available = math.max(found.left, 0) }
  -- the key is the line's "sku/option=value" for one of its option values
  for name, v in pairs(found.key ~= sku and first.options or EMPTY) do
    for _, value in ipairs(type(v) == "table" and v or { v }) do
      if sku .. "/" .. name .. "=" .. tostring(value) == found.key then
        local choice = p and p:option(name, value)
        short.option, short.value, short.choice_title = name, value, choice and choice.title or value
      end
    end
  end
  short.lines = self.cart:lines_with(sku, short.option, short.value)
  return short
end

-- c:checkout() turns the cart into an order (pending, with its lines,
-- subtotal, discount and total) and asks the bot's payment provider for a
-- hosted payment link, waiting for it without blocking other shoppers.
-- Returns the order (id, total, currency, payment_url ...) or nil and a
-- reason: "empty_cart", "discount_used", "provider_unavailable", or
-- "out_of_stock" and what ran short (see shortage above). The provider's
-- answer later comes back to the step the flow is waiting at, as
-- msg.payment = {status =, order =}.
function C:checkout()
  if self.cart:is_empty() then return nil, "empty_cart" end
  local t = self.cart:totals()
  if t.code and self.cart:code_used(t.code) then return nil, "discount_used" end
  local lines = json.array()
  for i, line in ipairs(self.cart:lines()) do
    lines[i] = { sku = line.sku, title = line.title, qty = line.qty, unit_price = line.unit_price,
                 total = line.total, options = line.options, option_titles = line.option_titles }
  end
  local order, err, found = commerce.create_order {
    currency = t.currency, subtotal = t.subtotal, discount = t.discount, total = t.total,
    discount_code = t.discount > 0 and t.code or nil, lines = lines,
  }
  if not order then
    if err == "out_of_stock" then return nil, err, shortage(self, found) end
    return nil, err
  end
  analytics.record(self, "checkout_started", { order = order.id, total = order.total, currency = order.currency })
  local frame = self.session.stack[#self.session.stack]
  self.session.pending_order = { id = order.id, flow = frame and frame.flow, depth = #self.session.stack,
                                 cart = self.session.cart.id }
  return order
end

-- The shopper's orders on this channel, newest first (c:orders(5)).
function C:orders(limit)
  return commerce.orders(limit or 10) or {}
end

-- One of the shopper's orders by number, or nil.
function C:order(id)
  if math.type(id) ~= "integer" then error("c:order(id): id is an order number", 2) end
  return commerce.order(id)
end

-- c:schedule(name, {after = seconds} or {at = epoch seconds}, data) asks
-- for an event `name` later: scripts/jobs.lua's function of that name runs
-- for this session then. Scheduling a name again replaces it.
function C:schedule(name, when, data)
  if type(name) ~= "string" or type(when) ~= "table" then
    error("c:schedule(name, {after = seconds} | {at = time}, data)", 2)
  end
  if when.after == nil and when.at == nil then error("c:schedule: give after = seconds or at = time", 2) end
  if data ~= nil then
    local ok, why = util.storable(data)
    if not ok then error("c:schedule: data " .. why, 2) end
  end
  local jobs = conversation.effects(self).jobs
  jobs[#jobs + 1] = { op = "put", name = name, after = when.after, at = when.at, data = data }
end

-- c:cancel(name) cancels the pending job of that name.
function C:cancel(name)
  if type(name) ~= "string" then error("c:cancel(name)", 2) end
  local jobs = conversation.effects(self).jobs
  jobs[#jobs + 1] = { op = "cancel", name = name }
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

-- return c:handoff("reason") hands the shopper to a person: the tone's
-- "handoff" template tells them someone is coming, the bot stops answering,
-- and the conversation waits in the agents' queue until an agent hands it
-- back (at a flow and step of their choice) or closes it.
function C:handoff(reason)
  if reason ~= nil and type(reason) ~= "string" then error("c:handoff([reason]) takes a string", 2) end
  return transition({ kind = "handoff", reason = reason or "" })
end

return conversation
