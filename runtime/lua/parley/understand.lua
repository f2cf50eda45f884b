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
  local has = {} -- entry -> {meaning = true}: a meaning once per phrase
  function self.add(phrase, meaning, fuzzy)
    if type(phrase) ~= "string" or phrase == "" then return end
    local folded = text.fold(phrase)
    if not folded or folded == "" then return end
    local i = self.index[folded]
    if not i then
      i = #self.phrases + 1
      self.phrases[i], self.fuzzy[i], self.meanings[i], self.index[folded] = folded, fuzzy or false, {}, i
      has[i] = {}
    elseif fuzzy then
      self.fuzzy[i] = true
    end
    if has[i][meaning] then return end
    has[i][meaning] = true
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

-- One meaning per option and per (option, choice), shared by every
-- product that has it: {kind, name, value, skus = {sku = true}}.
local function shared_meaning(shared, kind, name, value, sku)
  local key = kind .. "\0" .. name .. "\0" .. tostring(value)
  local m = shared[key]
  if not m then
    m = { kind = kind, name = name, value = value, skus = {} }
    shared[key] = m
  end
  m.skus[sku] = true
  return m
end

local function add_catalog(lex, raw, small)
  local tagged, shared = {}, {}
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
      lex.add((name:gsub("_", " ")), shared_meaning(shared, "option", name, nil, p.sku), true)
      for _, choice in ipairs(option_choices(option)) do
        local meaning = shared_meaning(shared, "choice", name, choice.value, p.sku)
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

-- What is read of a message: its first MAX_BYTES (cut at a character)
-- in at most MAX_CLAUSES clauses. A shopper's message is far shorter; a
-- hostile one costs no more than this.
local MAX_BYTES, MAX_CLAUSES = 2000, 32

local function head_of(s)
  if #s <= MAX_BYTES then return s end
  local cut = MAX_BYTES
  while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
  return s:sub(1, cut)
end

local function clauses_of(s)
  s = join_contractions(head_of(s))
  for _, b in ipairs(BREAKS) do s = s:gsub(b, "\0") end
  local out = {}
  for part in s:gmatch("[^%z]+") do
    if part:find("%S") then out[#out + 1] = part end
    if #out == MAX_CLAUSES then break end
  end
  return out
end

-- Where each unit starts in the folded text, and whether it is glued to
-- the one before (no space: "welcome10", "2lattes", "ラテ").
local function places(folded, units)
  local glued, from = {}, 1
  for u = 1, #units do
    local at = folded:find(units[u], from, true) or from
    glued[u] = u > 1 and at == from
    from = at + #units[u]
  end
  return glued
end

-- A unit of a script written without spaces (one CJK character).
local function is_cjk_unit(u)
  return #u >= 3 and u:byte(1) >= 0xE3 and utf8.len(u) == 1
end

-- The CJK phrases of the catalog, for typos in words written without
-- spaces ("エスプレソ"): their characters, kept once per state.
local function cjk_phrases(built)
  if built.cjk then return built.cjk end
  local list = {}
  for i, phrase in ipairs(built.phrases) do
    local n = utf8.len(phrase)
    if n and n >= 4 and not phrase:find(" ", 1, true) and is_cjk_unit(phrase:sub(1, utf8.offset(phrase, 2) - 1)) then
      for _, m in ipairs(built.meanings[i]) do
        if m.kind == "product" or m.kind == "choice" then list[#list + 1] = { phrase = phrase, entry = i, n = n }; break end
      end
    end
  end
  built.cjk = list
  return list
end

-- A run of CJK characters nothing knew: the catalog phrase it is a typo
-- of (one character off from 4, two from 8), or nil.
local function cjk_near(built, run)
  local n = utf8.len(run)
  if n < 3 then return nil end
  local best, best_d
  for _, c in ipairs(cjk_phrases(built)) do
    if math.abs(c.n - n) <= 2 then
      local limit = c.n >= 8 and 2 or 1
      local d = lexicon.distance(run, c.phrase, limit)
      if d <= limit and (not best_d or d < best_d) then best, best_d = c, d end
    end
  end
  return best, best_d
end

-- The tokens of one message: each a span (meanings) or a word nothing
-- knew, with its clause, its place among the message's units (at) and
-- whether it is glued to the unit before, in order.
local function tokens_of(built, s)
  local tokens, at_total = {}, 0
  for clause_no, clause in ipairs(clauses_of(s)) do
    local folded = text.fold(clause)
    if folded and folded ~= "" then
      local units, spans = built.scan:scan(folded)
      local glued = places(folded, units)
      local at = 1
      local function gap(upto)
        local u = at
        while u <= upto do
          -- a run of unknown CJK characters may be a typo of a catalog phrase
          local last = u
          if is_cjk_unit(units[u]) then
            while last < upto and is_cjk_unit(units[last + 1]) do last = last + 1 end
          end
          local near, d = last > u and cjk_near(built, table.concat(units, "", u, last))
          if near then
            tokens[#tokens + 1] = { clause = clause_no, meanings = built.meanings[near.entry], distance = d, unit = u,
                                    count = last - u + 1, at = at_total + u, phrase = near.phrase }
            u = last + 1
          else
            tokens[#tokens + 1] = { clause = clause_no, word = units[u], unit = u, at = at_total + u, glued = glued[u] }
            u = u + 1
          end
        end
      end
      for k = 1, #spans, 4 do
        local first, count, entry, distance = spans[k], spans[k + 1], spans[k + 2], spans[k + 3]
        gap(first - 1)
        tokens[#tokens + 1] = {
          clause = clause_no, meanings = built.meanings[entry], distance = distance, unit = first, count = count,
          phrase = built.phrases[entry], at = at_total + first, glued = glued[first],
        }
        at = first + count
      end
      gap(#units)
      at_total = at_total + #units
    end
  end
  return tokens
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
-- the first it names for any product.
local function choice_for(token, p)
  local any
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "choice" then
      if p and m.skus[p.sku] then return m end
      any = any or m
    end
  end
  return any
end

-- The choice a token names for product p exactly, or nil.
local function choice_of(token, p)
  local m = choice_for(token, p)
  if m and m.skus[p.sku] then return m end
end

local function option_for(token, p)
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "option" and (not p or m.skus[p.sku]) then return m end
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
-- Digits that may be a quantity or a choice number: 0-999 ("0044",
-- "7700" and "900123" are a phone number's, an order's or a code's).
local function small_number(word)
  if not word:match("^%d%d?%d?$") then return nil end
  return math.tointeger(tonumber(word))
end

local function only_filler(token)
  if not token or not token.meanings then return false end
  for _, m in ipairs(token.meanings) do
    if m.kind ~= "filler" and m.kind ~= "word" then return false end
  end
  return true
end

-- The token after i in the same clause, past fillers ("without THE cookie").
local function next_meaningful(tokens, i)
  local t = tokens[i]
  for k = i + 1, #tokens do
    local u = tokens[k]
    if u.clause ~= t.clause then return nil end
    if not only_filler(u) then return u, k end
  end
end

-- The token before i in the same clause, past fillers ("クロワッサンはなし").
local function prev_meaningful(tokens, i)
  local t = tokens[i]
  for k = i - 1, 1, -1 do
    local u = tokens[k]
    if u.clause ~= t.clause then return nil end
    if not only_filler(u) then return u end
  end
end

-- The number a token means, preferring "a"/"una" (an article) over "one".
local function number_of(token)
  local found
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "number" then
      if m.article then return m end
      found = found or m
    end
  end
  return found
end

-- Whether a token names something a negation can leave out.
local function negatable(token, view)
  return token and token.meanings and (product_of(token, view) or choice_for(token, nil) or option_for(token, nil))
end

local function read(tokens, view)
  local r = new_result()
  local rest = {}
  local pending = { options = {} } -- what comes before a product
  local last -- the item options after a product attach to
  local negate = false
  local answered = false -- yes/no only at the start
  local since_last = {} -- what came between the last item and now: also, number
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

  -- A number left at a clause's end: the quantity of the clause's item
  -- when it had none ("ラテを二つ", "latte 2"), else a choice number.
  local function end_clause(clause)
    if pending.qty and pending.explicit then
      if last and last.clause == clause and not last.explicit then
        last.qty, last.explicit = pending.qty, true
      else
        r.number = r.number or pending.qty
        note("number", 1)
      end
    end
    pending.qty, pending.explicit = nil, nil
  end

  local function quantity(numeral, t, i)
    local nxt = tokens[i + 1]
    local adjacent = nxt and nxt.clause == t.clause
    if adjacent and meaning_of(nxt, "ordsuffix") then
      r.number = numeral; note("number", 1)
      return i + 1
    end
    local counted = adjacent and meaning_of(nxt, "counter")
    local after_times = i > 1 and meaning_of(tokens[i - 1], "times") and tokens[i - 1].clause == t.clause
    if (counted or after_times) and last and not last.explicit and last.clause == t.clause
      and not since_last.also and not since_last.number then
      last.qty, last.explicit = numeral, true
    else
      pending.qty, pending.explicit = numeral, true
      since_last.number = true
    end
    return counted and i + 1 or i
  end

  local function add_item(p, pconf, t)
    -- more words of the same product's title ("house red wine", "cannoli
    -- siciliani") name it once
    if last and last.sku == p.sku and not since_last.also and not since_last.number and last.clause == t.clause then
      last.confidence = math.max(last.confidence, pconf)
      return
    end
    local item = { product = p, sku = p.sku, qty = pending.qty or 1, options = {}, confidence = pconf,
                   explicit = pending.explicit, clause = t.clause }
    note("items", pconf)
    flush_pending_options(item)
    r.items[#r.items + 1] = item
    last = item
    t.applied = { product = item }
    pending.qty, pending.explicit = nil, nil
    since_last = {}
  end

  local function leave_out_applied(a)
    if a.item then
      leave_out(a.item, a.name, a.value)
    elseif a.product then
      -- a product said and then "なし": left out, not ordered
      for k = #r.items, 1, -1 do if r.items[k] == a.product then table.remove(r.items, k) end end
      if last == a.product then last = nil end
      r.without = r.without or {}
      r.without[#r.without + 1] = { product = a.product.product, sku = a.product.sku }
    end
  end

  local function option_token(t, i, choice)
    local target = last
    -- before a product: waits for it, unless the clause names none
    local later_product
    for k = i + 1, n do
      if tokens[k].clause ~= t.clause then break end
      if tokens[k].meanings and product_of(tokens[k], view) then later_product = true; break end
      if meaning_of(tokens[k], "also") then break end
    end
    if target and target.clause ~= t.clause and later_product then target = nil end
    if later_product and (pending.qty or not last or since_last.also) then target = nil end
    local opt = option_for(t, target and target.product)
    if negate then
      local own = target and choice and choice_of(t, target.product)
      if own then
        leave_out(target, own.name, own.value)
      elseif target and opt then
        leave_out(target, opt.name, nil)
      elseif not target then
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
  end

  local seen_meaning = false
  local i = 1
  while i <= n do
    local t = tokens[i]
    if i > 1 and tokens[i - 1].clause ~= t.clause then end_clause(tokens[i - 1].clause) end
    local numeral = not t.meanings and small_number(t.word)
    -- digits glued to letters are part of a word ("welcome10"), except "x2"
    if numeral and t.glued and i > 1 and not tokens[i - 1].meanings then numeral = nil end
    if not t.meanings then
      if numeral then i = quantity(numeral, t, i) else rest[#rest + 1] = t.word end
    else
      local p, pconf = product_of(t, view)
      local choice = choice_for(t, last and last.product)
      local target = next_meaningful(tokens, i)
      -- yes or no: the first thing said, at the very start
      local first = not seen_meaning and t.at <= 2 and not answered
      if (meaning_of(t, "yes") or meaning_of(t, "no")) and first
        and not (meaning_of(t, "neg_before") and negatable(target, view)) then
        r.yes = meaning_of(t, "yes") ~= nil
        note("yes", 1); answered = true
      elseif meaning_of(t, "neg_before") and negatable(target, view) then
        negate = true
      elseif meaning_of(t, "neg_after") and prev_meaningful(tokens, i) and prev_meaningful(tokens, i).applied then
        leave_out_applied(prev_meaningful(tokens, i).applied)
      elseif meaning_of(t, "code") then
        r.code = meaning_of(t, "code").code; note("code", 1)
      elseif meaning_of(t, "ordinal") and not p then
        r.number = meaning_of(t, "ordinal").n; note("number", 1)
      elseif number_of(t) and not p and not (choice and last) then
        local m = number_of(t)
        if m.article then
          -- "a" counts only before a product; "a couple of" is two
          if not pending.qty then pending.qty, pending.explicit = m.n, m.n ~= 1 end
        else
          quantity(m.n, t, i)
        end
      elseif meaning_of(t, "counter") or meaning_of(t, "times") or meaning_of(t, "ordsuffix") then
        -- (a counter or suffix alone, or "x" before its number)
      elseif p and not (choice and last and has_choice(last.product, choice.name, choice.value) and last.options[choice.name] == nil and pconf < 1) then
        if negate then
          r.without = r.without or {}
          r.without[#r.without + 1] = { product = p, sku = p.sku }
          negate = false
          pending.qty, pending.explicit = nil, nil
        else
          add_item(p, pconf, t)
        end
      elseif choice or option_for(t, last and last.product) then
        option_token(t, i, choice)
      elseif meaning_of(t, "tag") and t.distance == 0 then
        r.tags = r.tags or {}
        r.tags[#r.tags + 1] = meaning_of(t, "tag").tag
      elseif meaning_of(t, "also") then
        since_last.also = true
      end
      -- "filler" and anything else: understood, nothing to do
      if not only_filler(t) then seen_meaning = true end
    end
    i = i + 1
  end
  if n > 0 then end_clause(tokens[n].clause) end
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
    item.explicit, item.clause = nil, nil
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
        local folded = ex.folded and text.fold(join_contractions(ex.text))
        if folded and (ex.locale == nil or ex.locale == locale) then
          local units, once = {}, {}
          for _, u in ipairs((cutter():scan(folded))) do -- the units, as the text's are cut
            if not once[u] then once[u] = true; units[#units + 1] = u end
          end
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

local examples_match

-- The intent whose examples the words are closest to, over its threshold,
-- and the score (0-1). Contractions are joined on both sides ("where's").
function understand.intent_by_examples(bot, locale, words)
  if not bot.has_examples or type(words) ~= "string" or words == "" then return nil end
  -- the router and then c:understand ask about the same message: once
  local last = bot.examples_last
  if last and last.words == words and last.locale == locale then return last.intent, last.score end
  local intent, score = examples_match(bot, locale, words)
  bot.examples_last = { words = words, locale = locale, intent = intent, score = score }
  return intent, score
end

-- (intent_by_examples, uncached)
examples_match = function(bot, locale, words)
  local folded = text.fold(join_contractions(head_of(words)))
  if not folded or folded == "" then return nil end
  local per = examples_of(bot).by_locale[locale]
  if not per or #per.list == 0 then return nil end
  -- every example word the text has, each at its best (a typed word may
  -- fit several: "whers" is "where" and "wheres")
  local units, words_found = per.scan:words(folded)
  if #words_found == 0 then return nil end
  local found, text_weight = {}, 0
  for _, u in ipairs(units) do text_weight = text_weight + weight_of(u) end
  for k = 1, #words_found, 3 do
    local phrase = per.phrases[words_found[k + 1]]
    local w = weight_of(phrase) * (words_found[k + 2] > 0 and 0.9 or 1)
    if not found[phrase] or found[phrase] < w then found[phrase] = w end
  end
  local best, best_score
  for _, ex in ipairs(per.list) do
    local got = 0
    for _, u in ipairs(ex.units) do -- (each word once)
      local w = found[u]
      if w then got = got + w end
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

-- understand.prepare(bot): builds the lexicons at load, so that no
-- shopper's turn waits for them (engine.finish calls it).
function understand.prepare(bot)
  lexicon_of(bot)
  if bot.has_examples then examples_of(bot) end
end

-- --- the whole ---------------------------------------------------------------

-- True when no token means anything and none is a number.
local function nothing_known(tokens)
  for _, t in ipairs(tokens) do
    if t.meanings or small_number(t.word) then return false end
  end
  return true
end

-- Confident: something understood, no part under CONFIDENT, and at most
-- half of the words unknown (a message mostly of words nothing knew is
-- for a language model, when the bot has one, even if a number was in it).
local function confident(r, unknown, total)
  local any = r.intent or #r.items > 0 or r.yes ~= nil or r.number or r.code or r.options or r.without
    or r.without_options
  if not any or unknown * 2 > total then return false end
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
  local r
  if nothing_known(tokens) then -- ("hi"): nothing to read
    r = new_result()
    local rest = {}
    for i, t in ipairs(tokens) do rest[i] = t.word end
    r.rest = table.concat(rest, " ")
  else
    r = read(tokens, view)
  end
  local folded = text.fold(head_of(s))
  local intent = folded and intent_of and intent_of(locale, folded)
  if intent then
    r.intent = intent.name; r.confidence.intent = 1
  else
    local by, score = understand.intent_by_examples(bot, locale, s)
    if by then r.intent = by.name; r.confidence.intent = math.floor(score * 100 + 0.5) / 100 end
  end
  local total, unknown = 0, 0
  for _, t in ipairs(tokens) do
    total = total + (t.count or 1)
    if not t.meanings and not small_number(t.word) then unknown = unknown + 1 end
  end
  r.confident = confident(r, unknown, total)
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
