-- parley.understand: what a shopper's words say in terms of the bot's own
-- world (c:understand). Deterministic and offline: the text is folded, cut
-- into clauses at punctuation, and each clause scanned for the phrases of
-- one lexicon per loaded bot (parley.lexicon): the catalog's titles in every
-- locale, unique words of titles, tags, aliases, option values and choice
-- titles (all typo-tolerant), the bot's discount codes, and the small words
-- of its languages (parley.words, exact). What the phrases mean is then read
-- left to right: quantities before (or, with a counter, after) a product,
-- options around it, negation, yes/no, choice numbers.
--
-- The same text and catalog always give the same result. The lexicon is
-- built on first use in each state (a reload makes a new one).
local text = require "parley.text"
local lexicon = require "parley.lexicon"
local words = require "parley.words"
local util = require "parley.util"
local json = require "json"

local understand = {}

-- A part below this confidence makes the whole not confident.
understand.CONFIDENT = 0.7

local EXAMPLE_THRESHOLD = 0.75

-- --- the lexicon ------------------------------------------------------------

-- Collects phrases and what each means: phrase -> entry number, entry ->
-- list of meanings.
local function collector()
  local self = { phrases = {}, fuzzy = {}, meanings = {}, index = {} }
  function self.add(phrase, meaning, fuzzy)
    if type(phrase) ~= "string" or phrase == "" then return end
    local folded = text.fold(phrase)
    if not folded or folded == "" then return end
    local i = self.index[folded]
    if not i then
      i = #self.phrases + 1
      self.phrases[i], self.fuzzy[i], self.meanings[i], self.index[folded] = folded, fuzzy or false, {}, i
    elseif fuzzy then
      self.fuzzy[i] = true
    end
    local list = self.meanings[i]
    list[#list + 1] = meaning
  end
  return self
end

-- Every text of a localized value (a string, or locale -> string).
local function each_text(v, fn)
  if type(v) == "string" then fn(v)
  elseif type(v) == "table" then
    for _, k in ipairs(util.sorted_keys(v)) do
      if type(v[k]) == "string" then fn(v[k]) end
    end
  end
end

-- Every alias (locale -> list).
local function each_alias(aliases, fn)
  if type(aliases) ~= "table" then return end
  for _, k in ipairs(util.sorted_keys(aliases)) do
    local list = aliases[k]
    if type(list) == "table" then
      for _, a in ipairs(list) do fn(a) end
    elseif type(list) == "string" then
      fn(list)
    end
  end
end

local function option_choices(option)
  return option.choices or option
end

-- The words of titles, with the products whose titles hold them: a word
-- in one product's titles only names that product ("croissant" for
-- "Butter Croissant"), unless it is also a small word of the language.
local function unique_title_words(raw, small)
  local owners = {}
  for _, p in ipairs(raw) do
    each_text(p.title, function(t)
      local folded = text.fold(t)
      if not folded then return end
      for w in folded:gmatch("%S+") do
        if utf8.len(w) and utf8.len(w) >= 4 and not w:match("^%d+$") and not small[w] then
          local set = owners[w] or {}
          set[p.sku] = true
          owners[w] = set
        end
      end
    end)
  end
  return owners
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function add_catalog(lex, raw, small)
  local tagged = {}
  for _, p in ipairs(raw) do
    each_text(p.title, function(t) lex.add(t, { kind = "product", sku = p.sku, weight = 1 }, true) end)
    each_alias(p.aliases, function(a) lex.add(a, { kind = "product", sku = p.sku, weight = 1 }, true) end)
    for _, tag in ipairs(p.tags or {}) do
      local list = tagged[tag] or {}
      list[#list + 1] = p.sku
      tagged[tag] = list
    end
    for _, name in ipairs(util.sorted_keys(p.options or {})) do
      local option = p.options[name]
      lex.add((name:gsub("_", " ")), { kind = "option", name = name, sku = p.sku }, true)
      for _, choice in ipairs(option_choices(option)) do
        local meaning = { kind = "choice", name = name, value = choice.value, sku = p.sku }
        lex.add((tostring(choice.value):gsub("_", " ")), meaning, true)
        each_text(choice.title, function(t) lex.add(t, meaning, true) end)
        each_alias(choice.aliases, function(a) lex.add(a, meaning, true) end)
      end
    end
  end
  for word, owners in pairs(unique_title_words(raw, small)) do
    if count_keys(owners) == 1 then lex.add(word, { kind = "product", sku = next(owners), weight = 0.85 }, true) end
  end
  for _, tag in ipairs(util.sorted_keys(tagged)) do
    local list = tagged[tag]
    lex.add((tag:gsub("_", " ")), { kind = "tag", tag = tag, skus = list }, true)
  end
end

local function languages_of(locales)
  local seen, out = {}, {}
  for _, l in ipairs(locales) do
    local lang = l:match("^(%a+)")
    lang = lang and lang:lower()
    if lang and words[lang] and not seen[lang] then
      seen[lang] = true
      out[#out + 1] = lang
    end
  end
  return out
end

local function add_small_words(lex, langs, small)
  for _, lang in ipairs(langs) do
    for _, w in ipairs(words[lang]) do
      local meaning = { kind = w[2], n = w[3], article = w.article, another = w.another, lang = lang }
      lex.add(w[1], meaning, false)
      local folded = text.fold(w[1])
      if folded then small[folded] = true end
    end
  end
end

-- The lexicon of a bot (built once per state).
local function build(bot)
  local lex = collector()
  local small = {}
  add_small_words(lex, languages_of(bot.locales), small)
  for _, code in ipairs(util.sorted_keys(bot.discounts or {})) do
    lex.add(code, { kind = "code", code = code }, false)
  end
  add_catalog(lex, bot.catalog.raw, small)
  return { scan = lexicon.new(lex.phrases, lex.fuzzy), meanings = lex.meanings, phrases = lex.phrases }
end

local function lexicon_of(bot)
  local built = bot.understanding
  if not built then
    built = build(bot)
    bot.understanding = built
  end
  return built
end

-- --- clauses and spans -----------------------------------------------------------

-- Clause breaks: the punctuation that ends a thought ("no, a latte").
local BREAKS = { ",", ";", "%.", "!", "%?", "\n", "、", "。", "，", "！", "？", "；" }

-- English contractions stay one word ("where's" -> "wheres", "i'd" ->
-- "id"), so their letter never reads as a size ("s") on its own; elision
-- ("l'acqua", "un'altra") is left to folding.
local function join_contractions(s)
  s = s:gsub("(%a)['\u{2019}](%a+)", function(before, after)
    local a = after:lower()
    if a == "s" or a == "d" or a == "ll" or a == "re" or a == "ve" or a == "m" or a == "t" then return before .. after end
  end)
  return s
end

local function clauses_of(s)
  s = join_contractions(s)
  for _, b in ipairs(BREAKS) do s = s:gsub(b, "\0") end
  local out = {}
  for part in s:gmatch("[^%z]+") do out[#out + 1] = part end
  return out
end

-- The tokens of one message: each a span (meanings) or a word nothing
-- knew, with a clause number, in order.
local function tokens_of(built, s)
  local tokens, units_total = {}, 0
  for clause_no, clause in ipairs(clauses_of(s)) do
    local folded = text.fold(clause)
    if folded and folded ~= "" then
      local units, spans = built.scan:scan(folded)
      units_total = units_total + #units
      local at = 1
      local function gap(upto)
        for u = at, upto do tokens[#tokens + 1] = { clause = clause_no, word = units[u], unit = u } end
      end
      for k = 1, #spans, 4 do
        local first, count, entry, distance = spans[k], spans[k + 1], spans[k + 2], spans[k + 3]
        gap(first - 1)
        tokens[#tokens + 1] = {
          clause = clause_no, meanings = built.meanings[entry], distance = distance, unit = first, count = count,
          phrase = built.phrases[entry],
        }
        at = first + count
      end
      gap(#units)
    end
  end
  return tokens, units_total
end

local function meaning_of(token, kind)
  if not token or not token.meanings then return nil end
  for _, m in ipairs(token.meanings) do
    if m.kind == kind then return m end
  end
end

-- How sure a phrase found at this distance is (1: exactly as written).
local function sureness(token, weight)
  local c = (weight or 1) - 0.12 * (token.distance or 0)
  return c < 0.4 and 0.4 or c
end

-- --- reading the tokens ----------------------------------------------------

-- The product a token names in view (a title, alias or unique title word,
-- else a tag that only one product carries), and how sure that is.
local function product_of(token, view)
  local best, weight
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "product" and (not weight or m.weight > weight) then
      local p = view:get(m.sku)
      if p then best, weight = p, m.weight end
    end
  end
  if best then return best, sureness(token, weight) end
  local tag = meaning_of(token, "tag")
  if tag and #tag.skus == 1 and token.distance == 0 then -- (a tag is a loose name: never with a typo)
    local p = view:get(tag.skus[1])
    if p then return p, sureness(token, 0.8) end
  end
end

-- The (option, value) a token names for product p when it has one, else
-- for the first product that has it.
local function choice_for(token, p)
  local any
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "choice" then
      if p and m.sku == p.sku then return m end
      any = any or m
    end
  end
  return any
end

-- The choice a token names for product p exactly, or nil.
local function choice_of(token, p)
  local m = choice_for(token, p)
  if m and m.sku == p.sku then return m end
end

local function option_for(token, p)
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "option" and (not p or m.sku == p.sku) then return m end
  end
end

local function is_multiple(p, name)
  local list = p.options and p.options[name]
  return list and list.multiple
end

local function set_option(item, name, value)
  if is_multiple(item.product, name) then
    local list = item.options[name] or {}
    for _, v in ipairs(list) do if v == value then return end end
    list[#list + 1] = value
    item.options[name] = list
  else
    item.options[name] = value
  end
end

local function has_choice(p, name, value)
  return p:option(name, value) ~= nil
end

-- "no milk": the option's "none" choice when it has one, else it is noted
-- as left out; "no oat": that choice left out.
local function leave_out(item, name, value)
  local p = item.product
  if value == nil then
    for _, none in ipairs { "none", "no", "without" } do
      if has_choice(p, name, none) then
        item.options[name] = is_multiple(p, name) and {} or none
        return
      end
    end
    item.without = item.without or {}
    item.without[name] = true
    return
  end
  if item.options[name] == value then item.options[name] = nil end
  item.without = item.without or {}
  local list = item.without[name]
  if type(list) ~= "table" then list = {}; item.without[name] = list end
  list[#list + 1] = value
end

local function new_result()
  return { items = {}, rest = "", confidence = {}, source = "parser" }
end

-- Reads the tokens; returns the result without intent.
local function read(tokens, view)
  local r = new_result()
  local rest = {}
  local pending = { options = {}, conf = 1 } -- what comes before a product
  local last -- the item options after a product attach to
  local negate = false
  local answered = false -- yes/no only at the start
  local n = #tokens

  local function note(part, conf)
    local c = r.confidence[part]
    if c == nil or conf < c then r.confidence[part] = conf end
  end

  local function loose_option(m)
    r.options = r.options or {}
    r.options[m.name] = r.options[m.name] or m.value
  end

  -- options said before the product: those it has are its own
  local function flush_pending_options(item)
    for _, token in ipairs(pending.options) do
      local m = choice_of(token, item.product)
      if m and (item.options[m.name] == nil or is_multiple(item.product, m.name)) then
        set_option(item, m.name, m.value)
      else
        loose_option(choice_for(token, nil))
      end
    end
    pending.options = {}
  end

  local i = 1
  while i <= n do
    local t = tokens[i]
    local nxt = tokens[i + 1]
    local adjacent = nxt and nxt.clause == t.clause
    if not t.meanings then
      rest[#rest + 1] = t.word
      local numeral = math.tointeger(tonumber(t.word))
      if numeral then
        -- a number: a quantity before a product, after one with a counter
        -- or "x", else a choice number
        if adjacent and (meaning_of(nxt, "ordsuffix")) then
          rest[#rest] = nil
          r.number = numeral; note("number", 1); i = i + 1
        elseif adjacent and meaning_of(nxt, "counter") and last and not last.explicit then
          rest[#rest] = nil
          last.qty, last.explicit = numeral, true; i = i + 1
        elseif last and not last.explicit and i > 1 and meaning_of(tokens[i - 1], "times") then
          rest[#rest] = nil
          last.qty, last.explicit = numeral, true
        else
          rest[#rest] = nil
          pending.qty, pending.explicit = numeral, true
          if adjacent and meaning_of(nxt, "counter") then i = i + 1 end
        end
      end
    else
      local p, pconf = product_of(t, view)
      local choice = choice_for(t, last and last.product)
      -- yes or no: said first, before anything ordered
      local first_word = i <= 3 and #r.items == 0 and not pending.qty and #pending.options == 0
      if (meaning_of(t, "yes") or meaning_of(t, "no")) and first_word and not answered
        and not (meaning_of(t, "neg_before") and adjacent and (product_of(nxt, view) or choice_for(nxt, nil) or option_for(nxt, nil))) then
        r.yes = meaning_of(t, "yes") ~= nil and true or false
        note("yes", 1); answered = true
      elseif meaning_of(t, "neg_before") and adjacent and (product_of(nxt, view) or choice_for(nxt, nil) or option_for(nxt, nil)) then
        negate = true
      elseif meaning_of(t, "neg_after") and i > 1 then
        local prev = tokens[i - 1]
        if prev.applied then
          local a = prev.applied
          if a.item then leave_out(a.item, a.name, a.value) elseif a.product then
            -- a product said and then "なし": left out, not ordered
            for k = #r.items, 1, -1 do if r.items[k] == a.product then table.remove(r.items, k) end end
            if last == a.product then last = nil end
            r.without = r.without or {}
            r.without[#r.without + 1] = { product = a.product.product, sku = a.product.sku }
          end
        elseif meaning_of(t, "no") and not answered then
          r.yes = false; note("yes", 1); answered = true
        end
      elseif meaning_of(t, "code") then
        r.code = meaning_of(t, "code").code; note("code", 1)
      elseif meaning_of(t, "ordinal") and not p then
        r.number = meaning_of(t, "ordinal").n; note("number", 1)
      elseif meaning_of(t, "number") and not p and not (choice and last) then
        local m = meaning_of(t, "number")
        if m.article then
          -- "a" counts only before a product; "a couple of" is two
          if not pending.qty then pending.qty, pending.explicit = m.n, m.n ~= 1 end
        else
          pending.qty, pending.explicit = m.n, true
        end
      elseif meaning_of(t, "counter") or meaning_of(t, "times") or meaning_of(t, "ordsuffix") then
        -- (a counter or suffix alone, or "x" before its number)
      elseif p and not (choice and last and has_choice(last.product, choice.name, choice.value) and last.options[choice.name] == nil and pconf < 1) then
        if negate then
          r.without = r.without or {}
          r.without[#r.without + 1] = { product = p, sku = p.sku }
          negate = false
        else
          local item = { product = p, sku = p.sku, qty = pending.qty or 1, options = {}, confidence = pconf,
                         explicit = pending.explicit }
          note("items", pconf)
          flush_pending_options(item)
          r.items[#r.items + 1] = item
          last = item
          t.applied = { product = item }
        end
        pending.qty, pending.explicit = nil, nil
      elseif choice or option_for(t, last and last.product) then
        local target = last
        -- before a product: waits for it, unless the clause names none
        local later_product
        for k = i + 1, n do
          if tokens[k].clause ~= t.clause then break end
          if tokens[k].meanings and product_of(tokens[k], view) then later_product = true; break end
          if meaning_of(tokens[k], "also") then break end
        end
        if later_product and (pending.qty or not last or last.closed) then target = nil end
        local opt = option_for(t, target and target.product)
        if negate then
          local own = target and choice and choice_of(t, target.product)
          if target then
            if own then
              leave_out(target, own.name, own.value)
            elseif opt then
              leave_out(target, opt.name, nil)
            end
          else
            r.without_options = r.without_options or {}
            r.without_options[#r.without_options + 1] = choice and { name = choice.name, value = choice.value } or { name = opt.name }
          end
          negate = false
        elseif choice then
          local own = target and choice_of(t, target.product)
          if own and (target.options[own.name] == nil or is_multiple(target.product, own.name)) then
            set_option(target, own.name, own.value)
            t.applied = { item = target, name = own.name, value = own.value }
            note("items", sureness(t))
          else
            pending.options[#pending.options + 1] = t
            note("options", sureness(t))
          end
        elseif opt and target then
          t.applied = { item = target, name = opt.name }
        end
      elseif meaning_of(t, "tag") then
        r.tags = r.tags or {}
        r.tags[#r.tags + 1] = meaning_of(t, "tag").tag
      elseif meaning_of(t, "also") then
        if last then last.closed = true end
      end
      -- "filler" and anything else: understood, nothing to do
    end
    i = i + 1
  end
  -- a number left at the end: the last item's quantity when it had none,
  -- else a choice number ("2", "two")
  if pending.qty then
    if last and not last.explicit and pending.explicit then
      last.qty = pending.qty
    elseif pending.explicit then
      r.number = r.number or pending.qty
      note("number", 1)
    end
  end
  -- options after the last product ("a latte, large") are its own
  for _, token in ipairs(pending.options) do
    local m = last and choice_of(token, last.product)
    if m and last.options[m.name] == nil then
      set_option(last, m.name, m.value)
    else
      loose_option(choice_for(token, nil))
    end
  end
  if r.options then r.confidence.options = r.confidence.options or 1 end
  for _, item in ipairs(r.items) do
    item.explicit, item.closed = nil, nil
    if item.qty > 99 then item.qty = 99 end
    if item.qty < 1 then item.qty = 1 end
  end
  r.rest = table.concat(rest, " ")
  return r
end

-- --- intents by examples -----------------------------------------------------

local the_cutter
local function cutter()
  the_cutter = the_cutter or lexicon.new({}, {})
  return the_cutter
end

-- Words of three characters or fewer count half ("is", "my").
local function weight_of(w)
  local n = utf8.len(w) or #w
  return n <= 3 and 0.5 or 1
end

local function examples_of(bot)
  local built = bot.understanding_examples
  if built then return built end
  built = { by_locale = {} }
  for _, locale in ipairs(bot.locales) do
    local lex, list = collector(), {}
    for _, intent in ipairs(bot.intents or {}) do
      for _, ex in ipairs(intent.examples or {}) do
        if ex.folded and (ex.locale == nil or ex.locale == locale) then
          local units = cutter():scan(ex.folded) -- the units, as the text's are cut
          local total = 0
          for _, u in ipairs(units) do
            lex.add(u, u, true)
            total = total + weight_of(u)
          end
          list[#list + 1] = { intent = intent, units = units, total = total }
        end
      end
    end
    built.by_locale[locale] = { scan = lexicon.new(lex.phrases, lex.fuzzy), list = list, phrases = lex.phrases }
  end
  bot.understanding_examples = built
  return built
end

-- The intent whose examples the folded text is closest to, over its
-- threshold, and the score (0-1).
function understand.intent_by_examples(bot, locale, folded)
  if not bot.has_examples or type(folded) ~= "string" or folded == "" then return nil end
  local per = examples_of(bot).by_locale[locale]
  if not per or #per.list == 0 then return nil end
  local units, spans = per.scan:scan(folded)
  if #units == 0 then return nil end
  local found, text_weight = {}, 0
  for _, u in ipairs(units) do text_weight = text_weight + weight_of(u) end
  for k = 1, #spans, 4 do
    local phrase = per.phrases[spans[k + 2]]
    local w = weight_of(phrase) * (spans[k + 3] > 0 and 0.9 or 1)
    if not found[phrase] or found[phrase] < w then found[phrase] = w end
  end
  local best, best_score
  for _, ex in ipairs(per.list) do
    local got, seen = 0, {}
    for _, u in ipairs(ex.units) do
      if found[u] and not seen[u] then got = got + found[u]; seen[u] = true end
    end
    local coverage = got / ex.total
    local precision = math.min(1, got / text_weight)
    local score = 0.75 * coverage + 0.25 * precision
    if score >= (ex.intent.threshold or EXAMPLE_THRESHOLD) and (not best_score or score > best_score) then
      best, best_score = ex.intent, score
    end
  end
  return best, best_score
end

-- --- the whole ---------------------------------------------------------------

local function confident(r)
  local any = r.intent or #r.items > 0 or r.yes ~= nil or r.number or r.code or r.options or r.without
    or r.without_options
  if not any then return false end
  for _, c in pairs(r.confidence) do
    if c < understand.CONFIDENT then return false end
  end
  return true
end

-- understand.parse(bot, view, s, locale, intent_of) -> result; intent_of(locale, folded)
-- gives the router's intent by phrase (the engine's own matching).
function understand.parse(bot, view, s, locale, intent_of)
  if type(s) ~= "string" then s = "" end
  if not utf8.len(s) then
    local r = new_result()
    r.confident = false
    return r
  end
  local built = lexicon_of(bot)
  local tokens = tokens_of(built, s)
  local r = read(tokens, view)
  local folded = text.fold(s)
  local intent = folded and intent_of and intent_of(locale, folded)
  if intent then
    r.intent = intent.name; r.confidence.intent = 1
  else
    local by, score = understand.intent_by_examples(bot, locale, folded)
    if by then r.intent = by.name; r.confidence.intent = math.floor(score * 100 + 0.5) / 100 end
  end
  r.confident = confident(r)
  return r
end

-- The result as plain data (JSON): skus in place of products.
function understand.plain(r)
  local items = json.array()
  for i, item in ipairs(r.items) do
    items[i] = { sku = item.sku, qty = item.qty, options = next(item.options) and item.options or nil,
                 without = item.without, confidence = item.confidence }
  end
  local without
  if r.without then
    without = json.array()
    for i, w in ipairs(r.without) do without[i] = w.sku end
  end
  return {
    intent = r.intent, items = items, without = without, yes = r.yes, number = r.number, code = r.code,
    options = r.options, without_options = r.without_options, tags = r.tags, rest = r.rest,
    confidence = r.confidence, confident = r.confident, source = r.source,
  }
end

return understand
