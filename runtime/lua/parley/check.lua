-- parley.check: the static checks of `parley check` (docs/authoring.md). It
-- reads the bot's scripts with luacheck's Lua parser (Debian's lua-check)
-- and compares what they name as literals with what the loaded bot has
-- (parley.facts): step names a flow returns, template keys and the
-- variables a c:say gives, flows a c:call starts, the catalog's option
-- names and values, and router phrases that an earlier one hides.
--
-- It runs in a tooling state of its own that only `parley check` makes
-- (runtime/cli/check.c), never in a bot's sandbox: that state has io and
-- finds luacheck through package.path.
-- The standard library as the full Lua state has it (taken before anything
-- else is loaded here): what a script may expect, which the sandbox may
-- lack. STANDARD[name] = true, or {field = true} for a library table.
local STANDARD = {}
for name, value in pairs(_G) do
  if type(value) == "table" and name ~= "_G" then
    STANDARD[name] = {}
    for k in pairs(value) do STANDARD[name][k] = true end
  else
    STANDARD[name] = true
  end
end

local parser = require "luacheck.parser"
local decoder = require "luacheck.decoder"
local text = require "parley.text"

local check = {}

-- Names ------------------------------------------------------------------

-- The edit distance of a and b (insertions, deletions, substitutions).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local row = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      row[j] = math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = row
  end
  return prev[#b]
end

-- Names longer than this are neither searched for a near candidate nor
-- printed whole: a 20 KB literal costs the search and the reader too much.
local LONGEST_NAME = 64

-- name as a message shows it: cut at LONGEST_NAME characters.
local function shown(name)
  name = tostring(name)
  if #name <= LONGEST_NAME then return name end
  return name:sub(1, LONGEST_NAME) .. "..."
end

-- " (did you mean 'x'?)" for the candidate closest to name, when it is
-- close: at most a third of the name's letters away (one for short names).
-- A candidate whose length alone is too far off is not compared.
local function did_you_mean(name, candidates)
  if #name > LONGEST_NAME then return "" end
  local best, best_d = nil, math.max(1, #name // 3) + 1
  for _, c in ipairs(candidates) do
    if #c <= LONGEST_NAME and math.abs(#c - #name) <= best_d then
      local d = distance(name, c)
      if d < best_d or (d == best_d and best and c < best) then best, best_d = c, d end
    end
  end
  return best and string.format(" (did you mean '%s'?)", best) or ""
end

local function keys_of(t)
  local list = {}
  for k in pairs(t or {}) do list[#list + 1] = k end
  table.sort(list)
  return list
end

local function set_of(list)
  local set = {}
  for _, v in ipairs(list or {}) do set[v] = true end
  return set
end

-- The syntax tree ------------------------------------------------------------

-- The text of a String node, or nil.
local function literal(node)
  return type(node) == "table" and node.tag == "String" and node[1] or nil
end

-- Calls fn(node) on node and every node under it; into nested functions
-- only when deep.
local function walk(node, fn, deep)
  if type(node) ~= "table" then return end
  if node.tag then fn(node) end
  for i = 1, #node do
    local child = node[i]
    if type(child) == "table" and (deep or child.tag ~= "Function") then walk(child, fn, deep) end
  end
end

-- The string literals an expression may evaluate to: "x", a and "x" or "y",
-- ("x").
local function literals_of(expr, out)
  if type(expr) ~= "table" then return out end
  if expr.tag == "String" then
    out[#out + 1] = expr[1]
  elseif expr.tag == "Paren" then
    literals_of(expr[1], out)
  elseif expr.tag == "Op" and expr[1] == "and" then
    literals_of(expr[3], out)
  elseif expr.tag == "Op" and expr[1] == "or" then
    literals_of(expr[2], out)
    literals_of(expr[3], out)
  end
  return out
end

-- The value of field `name` in a table constructor, or nil.
local function field(tbl, name)
  if type(tbl) ~= "table" or tbl.tag ~= "Table" then return nil end
  for _, item in ipairs(tbl) do
    if item.tag == "Pair" and literal(item[1]) == name then return item[2] end
  end
end

-- What a chunk's top level defines: locals[name] = the expression given at
-- `local name = ...` or `local function name`, and fields[name][key] =
-- the value of `name.key = ...` / `function name.key()`.
local function top_level(ast)
  local locals, fields = {}, {}
  for _, stat in ipairs(ast) do
    if stat.tag == "Local" or stat.tag == "Localrec" then
      local names, exprs = stat[1], stat[2] or {}
      for i, id in ipairs(names) do
        if id.tag == "Id" and exprs[i] then locals[id[1]] = exprs[i] end
      end
    elseif stat.tag == "Set" then
      for i, target in ipairs(stat[1]) do
        local value = stat[2][i]
        if target.tag == "Index" and target[1].tag == "Id" and literal(target[2]) and value then
          fields[target[1][1]] = fields[target[1][1]] or {}
          fields[target[1][1]][literal(target[2])] = value
        end
      end
    end
  end
  return locals, fields
end

local function resolve(expr, locals)
  if type(expr) == "table" and expr.tag == "Id" and locals[expr[1]] then return locals[expr[1]] end
  return expr
end

-- The Pair nodes of the table the chunk returns ({key = node}), following
-- `return M` to `local M = {...}` and `M.key = ...`.
local function returned_fields(ast, locals, fields)
  local last = ast[#ast]
  if not (last and last.tag == "Return" and last[1]) then return {} end
  local out = {}
  local ret = last[1]
  local name = ret.tag == "Id" and ret[1]
  ret = resolve(ret, locals)
  if ret.tag == "Table" then
    for _, item in ipairs(ret) do
      if item.tag == "Pair" and literal(item[1]) then out[literal(item[1])] = item end
    end
  end
  for key, value in pairs(name and fields[name] or {}) do
    out[key] = { tag = "Pair", line = value.line, { tag = "String", line = value.line, key }, value }
  end
  return out
end

-- The report --------------------------------------------------------------

local function reporter()
  local list, seen = {}, {}
  return list, function(level, file, line, message)
    line = line or 1
    local key = level .. "\0" .. file .. "\0" .. line .. "\0" .. message
    if seen[key] then return end
    seen[key] = true
    list[#list + 1] = { level = level, file = file, line = line, message = message }
  end
end

-- Calls each(fn, part) for the functions of the steps a flow file returns:
-- an action (part "action"), or a question's ask and answer, written in its
-- table or as `function q.answer()` on a local table (unresolved: each
-- resolves what it needs). locals and fields are top_level(ast)'s.
local function each_step_function(ast, locals, fields, each)
  for _, pair in pairs(returned_fields(ast, locals, fields)) do
    local step = resolve(pair[2], locals)
    if step.tag == "Function" then
      each(step, "action")
    elseif step.tag == "Table" then
      local name = pair[2].tag == "Id" and pair[2][1]
      local own = name and fields[name] or {}
      each(field(step, "answer") or own.answer, "answer")
      each(field(step, "ask") or own.ask, "ask")
    end
  end
end

-- Steps: names a flow's steps return -------------------------------------------

-- Checks every string literal the step functions of flow `flow` (file
-- `file`) return, and those of the file's local functions a step returns
-- the result of (`return sold_out(c, drink)`).
local function check_steps(ast, file, flow, facts, report)
  local steps = facts.flows[flow]
  if not steps then return end
  local has = set_of(steps)
  local locals, fields = top_level(ast)
  local seen = {}
  local function check_function(fn)
    if type(fn) ~= "table" or fn.tag ~= "Function" or seen[fn] then return end
    seen[fn] = true
    walk(fn[2], function(node)
      if node.tag ~= "Return" then return end
      for _, name in ipairs(literals_of(node[1], {})) do
        if not has[name] then
          report("error", file, node.line, string.format("returned '%s', but flow '%s' has no step '%s'%s",
            shown(name), flow, shown(name), did_you_mean(name, steps)))
        end
      end
      local call = node[1]
      if call and call.tag == "Call" and call[1].tag == "Id" then check_function(locals[call[1][1]]) end
    end)
  end
  -- (what `ask` returns is not used)
  each_step_function(ast, locals, fields, function(fn, part)
    if part ~= "ask" then check_function(resolve(fn, locals)) end
  end)
end

-- Templates: keys and variables of c:say and c:t -------------------------------

-- The placeholders' first names in a template ("drink" of {drink},
-- "order" of {order.id}), {persona.x}'s left out: the persona gives those
-- (a bare {persona} is looked up in the vars like any name).
local function needed_names(template, out)
  for name in template:gmatch("{([%w_%.]+)}") do
    if name:sub(1, 8) ~= "persona." then out[name:match("^[^.]+")] = true end
  end
end

-- The names a vars argument gives: a set, or nil when it cannot be told
-- (a variable, a call, a table with computed keys).
local function given_names(vars)
  if vars == nil or vars.tag == "Nil" then return {} end
  if vars.tag ~= "Table" then return nil end
  local given = {}
  for _, item in ipairs(vars) do
    if item.tag == "Pair" then
      local key = literal(item[1])
      if not key then return nil end
      given[key] = true
    elseif item.tag == "Call" or item.tag == "Invoke" or item.tag == "Dots" then
      return nil
    end
  end
  return given
end

-- warned[key .. "\0" .. locale]: a locale's missing text already reported
local function check_template(node, file, facts, report, warned)
  local method, key = literal(node[2]), literal(node[3])
  if not key then return end
  local templates, locales = facts.templates, facts.locales
  local default = locales[1]
  local call = "c:" .. method
  local anywhere = false
  for _, locale in ipairs(locales) do
    if (templates[locale] or {})[key] then anywhere = true end
  end
  if not anywhere then
    report("error", file, node.line, string.format("%s: no template '%s' in scripts/tone.lua%s", call, shown(key),
      did_you_mean(key, keys_of(templates[default]))))
    return
  end
  local given = given_names(node[4])
  local missing, order = {}, {}
  for _, locale in ipairs(locales) do
    local variations = (templates[locale] or {})[key]
    if not variations and locale ~= default and templates[default][key] then
      -- (said once, where the key is first used: the tone's own warning
      -- lists every key a locale lacks)
      if not warned[key .. "\0" .. locale] then
        warned[key .. "\0" .. locale] = true
        report("warning", file, node.line, string.format("%s: template '%s' has no '%s' text (the '%s' text is used)",
          call, key, locale, default))
      end
      variations = templates[default][key]
    end
    if not variations then
      local why = locale == default and string.format("the default locale '%s'", default)
        or string.format("'%s', nor the default locale '%s'", locale, default)
      report("error", file, node.line, string.format("%s: template '%s' has no text in %s", call, key, why))
    elseif given then
      local needed = {}
      for _, template in ipairs(variations) do needed_names(template, needed) end
      for _, name in ipairs(keys_of(needed)) do
        if not given[name] then
          if not missing[name] then
            missing[name] = {}
            order[#order + 1] = name
          end
          table.insert(missing[name], locale)
        end
      end
    end
  end
  for _, name in ipairs(order) do
    report("error", file, node.line, string.format("%s: template '%s' (%s) needs {%s}, but this call does not give it",
      call, key, table.concat(missing[name], ", "), name))
  end
end

-- c:call ----------------------------------------------------------------------

local function check_call(node, file, flow, facts, report)
  local name = literal(node[3])
  if name and not facts.flows[name] then
    report("error", file, node.line, string.format("c:call: no flow '%s' (flows/%s.lua)%s", shown(name), shown(name),
      did_you_mean(name, keys_of(facts.flows))))
  end
  local resume = literal(node[5])
  local steps = flow and facts.flows[flow]
  if resume and steps and not set_of(steps)[resume] then
    report("error", file, node.line, string.format("c:call: flow '%s' has no step '%s' to continue at%s",
      flow, shown(resume), did_you_mean(resume, steps)))
  end
end

-- The catalog: option names and values ----------------------------------------

-- options[name][value] = true over every product, and per sku.
local function catalog_index(facts)
  local all, by_sku = {}, {}
  for _, p in ipairs(facts.products or {}) do
    local own = {}
    for name, values in pairs(p.options or {}) do
      all[name] = all[name] or {}
      own[name] = {}
      for _, v in ipairs(values) do all[name][v], own[name][v] = true, true end
    end
    by_sku[p.sku] = own
  end
  return all, by_sku
end

-- whose: "product 'tee' has" or nil (any product of the catalog); where:
-- what the message starts with ("cart:add: " or "").
local function check_option(file, line, options, whose, where, name, value, report)
  local function say(what, missing, candidates)
    local text = whose and string.format("%s%s no %s", where, whose, what)
      or string.format("%sno product of the catalog has %s", where, what)
    report("error", file, line, text .. did_you_mean(missing, candidates))
  end
  if not options[name] then
    say(string.format("option '%s'", shown(name)), name, keys_of(options))
  elseif value and not options[name][value] then
    say(string.format("%s '%s'", shown(name), shown(value)), value, keys_of(options[name]))
  end
end

-- c.cart:add(product or sku, {options = {name = value or {values}}})
local function check_cart_add(node, file, catalog, report)
  local receiver = node[1]
  if not ((receiver.tag == "Index" and literal(receiver[2]) == "cart") or
          (receiver.tag == "Id" and receiver[1] == "cart")) then
    return
  end
  local options, whose = catalog.all, nil
  local sku = literal(node[3])
  if sku then
    if not catalog.by_sku[sku] then
      report("error", file, node.line, string.format("cart:add: no product '%s' in the catalog%s", shown(sku),
        did_you_mean(sku, keys_of(catalog.by_sku))))
      return
    end
    options, whose = catalog.by_sku[sku], string.format("product '%s' has", sku)
  end
  local chosen = field(node[4], "options")
  if not (chosen and chosen.tag == "Table") then return end
  for _, item in ipairs(chosen) do
    local name = item.tag == "Pair" and literal(item[1])
    if name then
      local value = item[2]
      local values = value.tag == "Table" and value or { value }
      local any = false
      for _, v in ipairs(values) do
        if literal(v) then
          any = true
          check_option(file, item.line, options, whose, "cart:add: ", name, literal(v), report)
        end
      end
      if not any then check_option(file, item.line, options, whose, "cart:add: ", name, nil, report) end
    end
  end
end

-- p:option(...) and p.options.x may be any object's in a lib/ module (a
-- wrapper of another API): there they are only warnings.
local function check_catalog(ast, file, catalog, report)
  local products_report = report
  if file:match("^lib/") then
    products_report = function(_, ...) report("warning", ...) end
  end
  walk(ast, function(node)
    if node.tag == "Invoke" and literal(node[2]) == "add" then
      check_cart_add(node, file, catalog, report)
    elseif node.tag == "Invoke" and literal(node[2]) == "option" and literal(node[3]) then
      check_option(file, node[3].line, catalog.all, nil, "", literal(node[3]), literal(node[4]), products_report)
    elseif node.tag == "Index" and literal(node[2]) and node[1].tag == "Index" and literal(node[1][2]) == "options" then
      check_option(file, node[2].line, catalog.all, nil, "", literal(node[2]), nil, products_report)
    end
  end, true)
end

-- The router: phrases an earlier phrase hides ------------------------------------

-- phrase_lines(ast)(intent, locale, phrase): the line of the string
-- literal `phrase` in intent `intent` of the router's returned table,
-- looked for first under the key `locale` (match = {es = {...}}), then
-- anywhere in the intent; the intent's line when it is not a literal.
local function phrase_lines(ast)
  local intents = {}
  if ast then
    local locals, fields = top_level(ast)
    intents = returned_fields(ast, locals, fields)
  end
  local cache = {}
  -- first[text] = line of the first literal `text` under node
  local function literal_lines(node)
    local first = {}
    walk(node, function(n)
      if n.tag == "String" and not first[n[1]] then first[n[1]] = n.line end
    end, true)
    return first
  end
  local function lines_of(intent, locale)
    local key = intent .. "\0" .. locale
    if cache[key] == nil then
      local pair = intents[intent]
      local under = false
      walk(pair and pair[2], function(n)
        if not under and n.tag == "Pair" and literal(n[1]) == locale then under = literal_lines(n[2]) end
      end, true)
      cache[key] = under or {}
      if cache[intent] == nil then cache[intent] = pair and literal_lines(pair) or {} end
    end
    return cache[key], cache[intent]
  end
  return function(intent, locale, phrase)
    local pair = intents[intent]
    if not pair then return 1 end
    local in_locale, anywhere = lines_of(intent, locale)
    return in_locale[phrase] or anywhere[phrase] or pair.line
  end
end

-- The engine tries a locale's phrases in order (intents by name) and takes
-- the first found in the message as whole words (parley.text.has_phrase).
-- A phrase that holds an earlier phrase of another intent is then never
-- the one matched: wherever it is found, the earlier one is too. A phrase
-- that folds to nothing (only punctuation) is never found at all.
--
-- Comparing each phrase with every earlier one would take a router of
-- thousands of phrases minutes, so an earlier phrase is looked up instead:
-- a message without CJK characters holds a phrase as whole words only
-- where the phrase's words are a run of the message's words. Only the
-- phrases that may hold CJK characters (any byte from 0xE3, where CJK's
-- code points begin at U+2E80; a word may end at a CJK character) are compared with
-- each earlier phrase.

-- The index of the earlier phrases (with `folded` text): by_text[folded] =
-- {first = i, other = i of the first of another intent}, and the word
-- counts they have.
local function phrase_index()
  return { by_text = {}, counts = {}, count_list = {} }
end

local function index_add(index, list, i)
  local folded = list[i].folded
  local entry = index.by_text[folded]
  if not entry then
    index.by_text[folded] = { first = i }
    local n = select(2, folded:gsub(" ", "")) + 1
    if not index.counts[n] then
      index.counts[n] = true
      index.count_list[#index.count_list + 1] = n
    end
  elseif not entry.other and list[entry.first].intent ~= list[i].intent then
    entry.other = i
  end
end

-- The first earlier phrase of another intent (its index) found in `later`
-- as a run of its words, or nil.
local function first_in_words(index, list, later)
  local words = {}
  for w in later.folded:gmatch("[^ ]+") do words[#words + 1] = w end
  local best = nil
  for _, n in ipairs(index.count_list) do
    for start = 1, #words - n + 1 do
      local entry = index.by_text[table.concat(words, " ", start, start + n - 1)]
      if entry then
        local i = list[entry.first].intent ~= later.intent and entry.first or entry.other
        if i and (not best or i < best) then best = i end
      end
    end
  end
  return best
end

local function may_hold_cjk(folded)
  return folded:find("[\xE2-\xFF]") ~= nil
end

local function first_hiding(index, list, j)
  local later = list[j]
  if not may_hold_cjk(later.folded) then return first_in_words(index, list, later) end
  for i = 1, j - 1 do
    local earlier = list[i]
    if earlier.intent ~= later.intent and earlier.folded ~= "" and text.has_phrase(later.folded, earlier.folded) then
      return i
    end
  end
end

local function check_router(ast, facts, report)
  local file = "scripts/router.lua"
  local line_of = phrase_lines(ast)
  for _, locale in ipairs(facts.locales) do
    local list = facts.phrases[locale] or {}
    local index = phrase_index()
    for j = 1, #list do
      local later = list[j]
      if later.folded == "" then
        report("warning", file, line_of(later.intent, locale, later.text), string.format(
          "phrase '%s' of intent '%s' never matches: it has no letters or digits (punctuation is not matched)",
          shown(later.text), later.intent))
      end
      local i = first_hiding(index, list, j)
      if i then
        local earlier = list[i]
        report("warning", file, line_of(later.intent, locale, later.text), string.format(
          "phrase '%s' of intent '%s' never matches: '%s' of intent '%s' is tried first and is in it",
          shown(later.text), later.intent, shown(earlier.text), earlier.intent))
      end
      if later.folded ~= "" then index_add(index, list, j) end
    end
  end
end

-- The run -----------------------------------------------------------------

-- The file's syntax tree, or nil, the error and its line. A file over
-- the loader's size limit is not read (the loader refuses it too).
local function parse(dir, file, max_size)
  local f = io.open(dir .. "/" .. file, "rb")
  if not f then return nil, "cannot be read" end
  local size = f:seek("end")
  if size > max_size then
    f:close()
    return nil, string.format("the file is %d KB; a script file may have at most %d KB", size >> 10, max_size >> 10)
  end
  f:seek("set")
  local source = f:read("a")
  f:close()
  local ok, ast = pcall(parser.parse, decoder.decode(source))
  if not ok then
    if type(ast) ~= "table" then error(ast, 0) end -- a budget ran out
    return nil, tostring(ast.msg), ast.line
  end
  return ast
end

local function by_place(a, b)
  if a.file ~= b.file then return a.file < b.file end
  if a.line ~= b.line then return a.line < b.line end
  return a.message < b.message
end

-- String literals that are not UTF-8 text (a file saved as Windows-1252):
-- what a shopper or a JSON reply gets from them is broken.
local function check_encoding(ast, file, report)
  walk(ast, function(node)
    if node.tag == "String" and not utf8.len(node[1]) then
      report("error", file, node.line,
        "this text is not UTF-8 (was the file saved as Windows-1252 or Latin-1?): save the file as UTF-8")
    end
  end, true)
end

-- The names the conversation goes by in a file: `c`, and in a flow the
-- first parameter of each step function, whatever it is named.
local function context_names(ast, file)
  local names = { c = true }
  if not file:match("^flows/") then return names end
  local locals, fields = top_level(ast)
  local function add(fn)
    fn = resolve(fn, locals)
    if type(fn) == "table" and fn.tag == "Function" and fn[1][1] and fn[1][1].tag == "Id" then
      names[fn[1][1][1]] = true
    end
  end
  each_step_function(ast, locals, fields, add)
  return names
end

-- A call of the conversation's `method` — c:say("k", ...) or c.say(c, "k",
-- ...) — as an Invoke node {receiver, "method", args...} whose line is the
-- line of its first argument (of the method name without one), so that a
-- call split across lines is reported where the name is; or nil when node
-- is no call of a context's method (client:call(...), log:t(...)).
local CONTEXT_METHODS = { say = true, t = true, call = true }

local function context_call(node, contexts)
  local receiver, method, first
  if node.tag == "Invoke" then
    receiver, method, first = node[1], literal(node[2]), 3
  elseif node.tag == "Call" and node[1].tag == "Index" and node[2] and node[2].tag == "Id" then
    receiver, method, first = node[1][1], literal(node[1][2]), 3
    if not (receiver.tag == "Id" and node[2][1] == receiver[1]) then return nil end
  else
    return nil
  end
  if not (CONTEXT_METHODS[method] and receiver.tag == "Id" and contexts[receiver[1]]) then return nil end
  local call = { tag = "Invoke", receiver, { tag = "String", method } }
  for i = first, #node do call[#call + 1] = node[i] end
  call.line = (call[3] and call[3].line) or (node.tag == "Invoke" and node[2].line) or node.line
  return call
end

-- The sandbox: globals and modules it does not have -----------------------------

-- Calls fn(id, key) for each use of a global variable in the chunk: id is
-- the Id node (no local of that name is in scope), key the literal field
-- when it is indexed (`os.execute`: key "execute"); and assigned(name) for
-- each global the chunk sets (`io = {...}`: its own, not the library).
local function each_global(ast, fn, assigned)
  local scopes = {}
  local expr, block
  local function declared(name)
    for i = #scopes, 1, -1 do
      if scopes[i][name] then return true end
    end
    return false
  end
  local function declare(names)
    for _, id in ipairs(names) do
      if id.tag == "Id" then scopes[#scopes][id[1]] = true end
    end
  end
  local function stat(node)
    local tag = node.tag
    if tag == "Local" then
      expr(node[2])
      declare(node[1])
    elseif tag == "Localrec" then
      declare(node[1])
      expr(node[2])
    elseif tag == "Fornum" then
      for i = 2, #node - 1 do expr(node[i]) end
      block(node[#node], { node[1] })
    elseif tag == "Forin" then
      expr(node[2])
      block(node[3], node[1])
    elseif tag == "While" then
      expr(node[1])
      block(node[2])
    elseif tag == "Repeat" then -- the condition sees the body's locals
      scopes[#scopes + 1] = {}
      for _, s in ipairs(node[1]) do stat(s) end
      expr(node[2])
      scopes[#scopes] = nil
    elseif tag == "If" then
      for _, part in ipairs(node) do
        if part.tag then expr(part) else block(part) end
      end
    elseif tag == "Do" then
      block(node)
    elseif tag == "Set" then
      for _, target in ipairs(node[1]) do
        if target.tag == "Id" then
          if not declared(target[1]) then assigned(target[1]) end
        elseif target.tag == "Index" and target[1].tag == "Id" then
          expr(target[2]) -- (setting a field of a library is no use of what it lacks)
        else
          expr(target)
        end
      end
      expr(node[2])
    else
      expr(node)
    end
  end
  function block(stats, names)
    scopes[#scopes + 1] = {}
    declare(names or {})
    for _, s in ipairs(stats) do stat(s) end
    scopes[#scopes] = nil
  end
  function expr(node)
    if type(node) ~= "table" then return end
    if node.tag == "Id" then
      if not declared(node[1]) then fn(node, nil) end
    elseif node.tag == "Index" and node[1].tag == "Id" and literal(node[2]) then
      if not declared(node[1][1]) then fn(node[1], literal(node[2])) end
    elseif node.tag == "Function" then
      block(node[2], node[1])
    else
      for i = 1, #node do expr(node[i]) end
    end
  end
  block(ast)
end

local function set_of_names(list)
  return list == true and true or set_of(list)
end

-- Whether require(name) finds a module: the runtime's, or a file of the
-- bot folder (runtime/sandbox/vm.c's searcher: "lib.util" is lib/util.lua).
local function module_found(name, modules, dir)
  if modules[name] then return true end
  if name == "" or name:find("^%.") or name:find("[^%w_%.%-]") or name:find("..", 1, true) then return false end
  local f = io.open(dir .. "/" .. name:gsub("%.", "/") .. ".lua", "rb")
  if f then f:close() end
  return f ~= nil
end

local NOT_IN_SANDBOX = "%s is not in the sandbox (docs/sandbox.md): a turn that reaches this line fails"

-- Globals of standard Lua the sandbox lacks (io, os.execute, dofile ...),
-- require of a module it does not find, and load of a binary chunk.
local function check_sandbox(ast, file, facts, dir, report)
  local globals, modules = facts.globals or {}, set_of(facts.modules)
  local has = {}
  for name, fields in pairs(globals) do has[name] = set_of_names(fields) end
  local uses, own = {}, {}
  each_global(ast, function(id, key) uses[#uses + 1] = { id = id, key = key } end,
    function(name) own[name] = true end)
  for _, use in ipairs(uses) do
    local name, key = use.id[1], use.key
    local standard = not own[name] and STANDARD[name]
    if standard and has[name] == nil then
      report("error", file, use.id.line, string.format(NOT_IN_SANDBOX, "'" .. name .. "'"))
    elseif key and type(standard) == "table" and standard[key] and type(has[name]) == "table"
        and not has[name][key] then
      report("error", file, use.id.line, string.format(NOT_IN_SANDBOX, "'" .. name .. "." .. key .. "'"))
    end
  end
  walk(ast, function(node)
    if node.tag ~= "Call" or node[1].tag ~= "Id" then return end
    local fn = node[1][1]
    if fn == "require" and literal(node[2]) and not module_found(literal(node[2]), modules, dir) then
      local name = literal(node[2])
      report("error", file, node[2].line, string.format(
        "require: no module '%s' in the sandbox: neither one of the runtime's nor %s in the bot folder", shown(name),
        shown(name:gsub("%.", "/") .. ".lua")))
    elseif fn == "load" and literal(node[4]) and not literal(node[4]):find("t", 1, true) then
      report("error", file, node[4].line, "load: the sandbox compiles text only, never a binary chunk (mode 't')")
    end
  end, true)
end

-- Checks one file's syntax tree.
local function check_file(ast, file, facts, catalog, report, warned, dir)
  check_encoding(ast, file, report)
  check_sandbox(ast, file, facts, dir, report)
  local flow = file:match("^flows/([^/]+)%.lua$")
  if flow then check_steps(ast, file, flow, facts, report) end
  local contexts = context_names(ast, file)
  walk(ast, function(node)
    local call = context_call(node, contexts)
    if not call then return end
    local method = call[2][1]
    if method == "say" or method == "t" then check_template(call, file, facts, report, warned)
    else check_call(call, file, flow, facts, report) end
  end, true)
  if catalog then check_catalog(ast, file, catalog, report) end
end

-- What a check that ran out of a budget says.
local function over_budget(err, limits)
  if err == limits.over_instructions then
    return string.format("not checked to the end: over the check's budget of %d instructions a file (split the file)",
      limits.instructions)
  elseif tostring(err):find("not enough memory", 1, true) then
    return string.format("not checked to the end: over the check's memory budget of %d MB", limits.memory_mb)
  end
  return "not checked to the end: " .. tostring(err)
end

-- check.run(facts, dir, files, limits) -> {{level =, file =, line =,
-- message =}, ...} in file and line order: facts is what parley.facts gave
-- for the loaded bot, files the bot's .lua files (flows/, scripts/, lib/)
-- relative to dir; limits = {fresh_budget =, over_instructions =,
-- instructions =, memory_mb =, max_file =} (runtime/cli/check.c): each
-- file gets a fresh instruction budget, and one that runs out of a budget
-- is an error at the file.
function check.run(facts, dir, files, limits)
  local list, report = reporter()
  local catalog = nil
  if facts.products and #facts.products > 0 then
    local all, by_sku = catalog_index(facts)
    catalog = { all = all, by_sku = by_sku }
  end
  local router_ast, warned = nil, {}
  for _, file in ipairs(files) do
    limits.fresh_budget()
    local ok, err = pcall(function()
      local ast, why, line = parse(dir, file, limits.max_file)
      if not ast then
        -- flows/ and scripts/ loaded, so there luacheck's parser disagrees
        -- with Lua's (a warning); a lib/ module is only compiled when a
        -- step requires it, in front of a shopper (an error)
        if not line then
          report("error", file, 1, why)
        elseif file:match("^lib/") then
          report("error", file, line, why .. " (a step that requires this module fails)")
        else
          report("warning", file, line, "not checked: luacheck's parser says " .. why)
        end
        return
      end
      if file == "scripts/router.lua" then router_ast = ast end
      check_file(ast, file, facts, catalog, report, warned, dir)
    end)
    if not ok then report("error", file, 1, over_budget(err, limits)) end
  end
  limits.fresh_budget()
  local ok, err = pcall(check_router, router_ast, facts, report)
  if not ok then report("error", "scripts/router.lua", 1, over_budget(err, limits)) end
  table.sort(list, by_place)
  return list
end

return check
