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

local EXAMPLE_THRESHOLD = 0.8

-- --- the lexicons -----------------------------------------------------------
--
-- Two lexicons are scanned: the catalog's (built in C with the catalog,
-- whatever its size: parley.catalog.lexicon, meanings and near) and a small
-- one of this state: the bot's discount codes and the small words of its
-- languages. Their spans are merged as one scan would take them.

local native = require "parley.catalog"

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

-- The small lexicon of a bot: its languages' words, then its codes.
local function build(bot)
  local lex = collector()
  for _, lang in ipairs(languages_of(bot.locales)) do
    for _, w in ipairs(words[lang]) do
      lex.add(w[1], { kind = w[2], n = w[3], article = w.article, another = w.another, lang = lang,
                      lonely = w.lonely }, false)
    end
  end
  for _, code in ipairs(util.sorted_keys(bot.discounts or {})) do
    lex.add(code, { kind = "code", code = code }, false)
  end
  return { small = lexicon.new(lex.phrases, lex.fuzzy), small_meanings = lex.meanings, catalog = nil, cached = {} }
end

local function lexicon_of(bot)
  local built = bot.understanding
  if not built then
    built = build(bot)
    bot.understanding = built
  end
  return built
end

-- What a catalog phrase means, as the reading below wants it (kept per
-- state for the phrases met).
local function catalog_meanings(built, entry)
  local got = built.cached[entry]
  if got then return got end
  got = {}
  for i, m in ipairs(native.meanings(entry)) do
    if m.kind == "product" or m.kind == "part" then
      got[i] = { kind = "product", sku = m.sku, weight = m.kind == "part" and 0.85 or 1, part = m.kind == "part",
                 locale = m.locale }
    elseif m.kind == "tag" then
      got[i] = { kind = "tag", tag = m.name, sku = m.sku }
    else
      got[i] = { kind = m.kind, name = m.name, value = m.value, locale = m.locale }
    end
  end
  built.cached[entry] = got
  return got
end

local function catalog_lexicon(built)
  built.catalog = built.catalog or native.lexicon()
  return built.catalog
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

-- A sentence folded as the understanding reads it (contractions joined,
-- its head only): for the router's examples and what is compared with them.
function understand.fold_sentence(s)
  return text.fold(join_contractions(head_of(s)))
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

-- The tokens of one message: each a span (meanings) or a word nothing
-- knew, with its clause, its place among the message's units (at) and
-- whether it is glued to the unit before, in order.
-- The spans of both lexicons as one scan takes them: from the left, at
-- each place the longest, then the nearest, then the small words'.
-- Returns a list of {first, count, meanings, distance}.
local function merged_spans(built, folded)
  local units, small = built.small:scan(folded)
  local _, big = catalog_lexicon(built):scan(folded)
  local candidates = {}
  for k = 1, #small, 4 do
    candidates[#candidates + 1] = { small[k], small[k + 1], built.small_meanings[small[k + 2]], small[k + 3], 0 }
  end
  for k = 1, #big, 4 do
    candidates[#candidates + 1] = { big[k], big[k + 1], big[k + 2], big[k + 3], 1 }
  end
  table.sort(candidates, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    if a[2] ~= b[2] then return a[2] > b[2] end
    if a[4] ~= b[4] then return a[4] < b[4] end
    return a[5] < b[5]
  end)
  local spans, next_free = {}, 1
  for i, c in ipairs(candidates) do
    local meanings = c[5] == 1 and catalog_meanings(built, c[3]) or c[3]
    local taken = spans[#spans]
    if c[1] >= next_free then
      spans[#spans + 1] = { c[1], c[2], meanings, c[4] }
      next_free = c[1] + c[2]
    elseif taken and taken[1] == c[1] and taken[2] == c[2] and taken[4] == c[4] and i > 1 then
      -- the same words in both lexicons ("l": a filler and a size): both
      -- meanings, except a single word of a title ("quattro" of "Quattro
      -- Formaggi" is the number)
      local both = {}
      for _, m in ipairs(taken[3]) do both[#both + 1] = m end
      for _, m in ipairs(meanings) do
        if not m.part then both[#both + 1] = m end
      end
      taken[3] = both
    end
  end
  return units, spans
end

-- The meanings a phrase found with a typo may have: a title or alias of
-- the shopper's own language, or of every locale (an English alias
-- "beer" is no typo of Italian "bere"), and never a single word of a title.
local function usable(meanings, distance, lang)
  if distance == 0 then return meanings end
  local out = {}
  for _, m in ipairs(meanings) do
    local ok = not m.part and (m.locale == nil or m.locale:match("^(%a+)") == lang)
    if ok then out[#out + 1] = m end
  end
  return out
end

-- The tokens of one message: each a span (meanings) or a word nothing
-- knew, with its clause, its place among the message's units (at) and
-- whether it is glued to the unit before, in order.
-- A folded clause in windows of at most WINDOW units (the scan reads at
-- most 128 of a text): a long clause without punctuation is read whole.
local WINDOW = 100

-- An empty lexicon: its scan only cuts text into units.
local the_cutter
local function cutter()
  the_cutter = the_cutter or lexicon.new({}, {})
  return the_cutter
end

local function windows_of(folded)
  local out = {}
  while true do
    local units = cutter():scan(folded)
    if #units <= WINDOW then break end
    -- the end of the WINDOW-th unit
    local from = 1
    for u = 1, WINDOW do from = folded:find(units[u], from, true) + #units[u] end
    out[#out + 1] = folded:sub(1, from - 1)
    folded = folded:sub(from)
  end
  out[#out + 1] = folded
  return out
end

local function tokens_of(built, s, lang)
  local tokens, at_total = {}, 0
  local pieces = {}
  for clause_no, clause in ipairs(clauses_of(s)) do
    local folded = text.fold(clause)
    if folded and folded ~= "" then
      for _, window in ipairs(windows_of(folded)) do pieces[#pieces + 1] = { clause_no, window } end
    end
  end
  for _, piece in ipairs(pieces) do
    local clause_no, folded = piece[1], piece[2]
    if folded:find("%S") then
      local units, spans = merged_spans(built, folded)
      local glued = places(folded, units)
      local at = 1
      local function unknown(u)
        tokens[#tokens + 1] = { clause = clause_no, word = units[u], unit = u, at = at_total + u, glued = glued[u] }
      end
      local function gap(upto)
        local u = at
        while u <= upto do
          -- a run of unknown CJK characters may be a typo of a catalog
          -- phrase ("エスプレソ"): tried once, as a whole
          local last = u
          if is_cjk_unit(units[u]) then
            while last < upto and is_cjk_unit(units[last + 1]) do last = last + 1 end
          end
          local entry, d
          if last - u >= 2 then entry, d = native.near(table.concat(units, "", u, last)) end
          if entry then
            tokens[#tokens + 1] = { clause = clause_no, meanings = catalog_meanings(built, entry), distance = d,
                                    unit = u, count = last - u + 1, at = at_total + u }
          else
            for k = u, last do unknown(k) end
          end
          u = last + 1
        end
      end
      for _, span in ipairs(spans) do
        local first, count = span[1], span[2]
        gap(first - 1)
        tokens[#tokens + 1] = { clause = clause_no, meanings = usable(span[3], span[4], lang), distance = span[4],
                                unit = first, count = count, at = at_total + first, glued = glued[first] }
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
  local best, weight, part
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "product" and (not weight or m.weight > weight) then
      local p = view:get(m.sku)
      if p then best, weight, part = p, m.weight, m.part end
    end
  end
  if best then return best, sureness(token, weight), part end
  local tag = meaning_of(token, "tag")
  if tag and tag.sku and token.distance == 0 then -- (a tag is a loose name: never with a typo)
    local p = view:get(tag.sku)
    if p then return p, sureness(token, 0.8), true end
  end
end

-- Whether a token near token i names a product by its title or an alias
-- (not by one of its words or a tag), in the same clause with no "and", no
-- number and no "a" between them: what token i then says is about that
-- product ("extra large margherita", "a margherita with cheese").
local function named_in_clause(tokens, i, view)
  local function separates(t)
    if not t.meanings then return false end
    for _, m in ipairs(t.meanings) do
      if m.kind == "also" or m.kind == "number" then return true end
    end
    return false
  end
  for step = -1, 1, 2 do
    local k = i + step
    while tokens[k] and tokens[k].clause == tokens[i].clause and not separates(tokens[k]) do
      local p, _, loose = product_of(tokens[k], view)
      if p and not loose then return true end
      k = k + step
    end
  end
  return false
end

-- The (option, value) a token names that product p has, when there is
-- one, else the first it names.
local function choice_for(token, p)
  local any
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "choice" then
      if p and p:option(m.name, m.value) then return m end
      any = any or m
    end
  end
  return any
end

-- The choice a token names that product p has, or nil.
local function choice_of(token, p)
  local m = choice_for(token, p)
  if m and p:option(m.name, m.value) then return m end
end

local function option_for(token, p)
  for _, m in ipairs(token.meanings or {}) do
    if m.kind == "option" and (not p or (p.options and p.options[m.name])) then return m end
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
    -- a number beside a word nothing knows is about that word ("table 12",
    -- "in 10 minutes", "3 pm", "ci sei"), and one over 99 is no quantity
    local before = tokens[i - 1]
    if numeral > 99 or (adjacent and not nxt.meanings and not small_number(nxt.word))
      or (before and before.clause == t.clause and not before.meanings and not small_number(before.word)) then
      if t.word then rest[#rest + 1] = t.word end
      return i
    end
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
      local p, pconf, loose = product_of(t, view)
      local choice = choice_for(t, last and last.product)
      local target = next_meaningful(tokens, i)
      -- yes or no: the first thing said, at the very start
      local first = not seen_meaning and t.at <= 2 and not answered
      -- (a yes that is also another word, Italian "si" of "si può", only
      -- alone or before words it knows)
      local lonely_ok = true
      local yes = meaning_of(t, "yes")
      if yes and yes.lonely then
        local after = tokens[i + 1]
        lonely_ok = not after or after.clause ~= t.clause or after.meanings ~= nil
      end
      if (meaning_of(t, "yes") or meaning_of(t, "no")) and first and lonely_ok
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
        -- "a second" or "one second" is a moment, not the second choice
        local before = tokens[i - 1]
        local moment = before and before.clause == t.clause and number_of(before)
        if moment then
          pending.qty, pending.explicit = nil, nil -- ("one" of "one second" is no number either)
        else
          r.number = meaning_of(t, "ordinal").n; note("number", 1)
        end
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
      elseif p and loose and named_in_clause(tokens, i, view) then
        -- a word of a title or a tag beside a product named: not another
        -- item ("extra large margherita", "a margherita with cheese")
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
        local folded = ex.folded -- (understand.fold_sentence's, by the engine)
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
function understand.intent_by_examples(bot, locale, said)
  if not bot.has_examples or type(said) ~= "string" or said == "" then return nil end
  -- the router and then c:understand ask about the same message: once
  local last = bot.examples_last
  if last and last.said == said and last.locale == locale then return last.intent, last.score end
  local intent, score = examples_match(bot, locale, said)
  bot.examples_last = { said = said, locale = locale, intent = intent, score = score }
  return intent, score
end

-- (intent_by_examples, uncached)
examples_match = function(bot, locale, said)
  local folded = understand.fold_sentence(said)
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
    -- how much of the example the words hold, and how much of the words
    -- the example: both must be high (a message that merely contains
    -- "forget it" is not "forget it")
    local coverage = got / ex.total
    local precision = math.min(1, got / text_weight)
    local score = coverage + precision > 0 and 2 * coverage * precision / (coverage + precision) or 0
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
  local tokens = tokens_of(built, s, locale:match("^(%a+)"))
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
