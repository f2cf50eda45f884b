-- parley.facts: what a loaded bot is made of, as plain data for the static
-- checks of `parley check` (parley.check, which runs in a tooling state of
-- its own and cannot see the bot's state): flows and steps, the tone's
-- templates per locale, the router's phrases in the order they are matched,
-- the catalog's products with their option names and values, and the
-- globals and modules the sandbox gives scripts.
local json = require "json"
local util = require "parley.util"

local facts = {}

-- s with each byte that is not part of UTF-8 text replaced by U+FFFD: a
-- template saved as Windows-1252 must not keep the checks from running
-- (parley.check reports such literals at their line).
local function clean(s)
  if type(s) ~= "string" or utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end

-- A new list of t's items (json.array would mark t itself).
local function list_of(t)
  local list = json.array()
  for i, v in ipairs(t) do list[i] = clean(v) end
  return list
end

local function sorted_array(t)
  local list = json.array()
  for i, k in ipairs(util.sorted_keys(t)) do list[i] = clean(k) end
  return list
end

local function flows_of(bot)
  local out = {}
  for name, def in pairs(bot.flows) do out[clean(name)] = sorted_array(def) end
  return out
end

-- templates[locale][key] = {variation, ...}
local function templates_of(bot)
  local out = {}
  for locale, keys in pairs(bot.tone.templates) do
    local t = {}
    for key, variations in pairs(keys) do
      if type(key) == "string" then t[clean(key)] = list_of(variations) end
    end
    out[clean(locale)] = t
  end
  return out
end

-- phrases[locale] = {{intent =, text =, folded =}, ...} in the order the
-- engine tries them (engine.finish builds the same lists for matching).
local function phrases_of(bot)
  local out = {}
  for _, locale in ipairs(bot.locales) do
    local list = json.array()
    for _, intent in ipairs(bot.intents) do
      for _, phrase in ipairs(intent.phrases) do
        if (phrase.locale == nil or phrase.locale == locale) and phrase.folded then
          list[#list + 1] = { intent = clean(tostring(intent.name)), text = clean(phrase.text),
            folded = clean(phrase.folded) }
        end
      end
    end
    out[locale] = list
  end
  return out
end

-- products = {{sku =, options = {name = {value, ...}}}, ...}
local function products_of(bot)
  local out = json.array()
  for _, raw in ipairs(bot.catalog.raw) do
    local options = {}
    for name, option in pairs(raw.options or {}) do
      local values = json.array()
      for _, choice in ipairs(option.choices or option) do values[#values + 1] = clean(choice.value) end
      options[clean(name)] = values
    end
    out[#out + 1] = { sku = clean(raw.sku), options = options }
  end
  return out
end

-- What the sandbox gives scripts, read from its own globals (so that the
-- check follows runtime/sandbox/vm.c's allow list): globals[name] = true,
-- or the sorted names in a library table; modules = what require finds
-- besides the bot folder's files (package.preload and package.loaded).
local function globals_of()
  local out = {}
  for name, value in pairs(_G) do
    if type(name) == "string" then
      if type(value) == "table" and name ~= "_G" then
        local fields = {}
        for k in pairs(value) do
          if type(k) == "string" then fields[k] = true end
        end
        out[name] = sorted_array(fields)
      else
        out[name] = true
      end
    end
  end
  return out
end

local function modules_of()
  local names = {}
  for name in pairs(package.preload) do names[name] = true end
  for name in pairs(package.loaded) do names[name] = true end
  return sorted_array(names)
end

function facts.of(bot)
  return {
    locales = list_of(bot.locales),
    start_flow = bot.start_flow,
    flows = flows_of(bot),
    templates = templates_of(bot),
    phrases = phrases_of(bot),
    products = products_of(bot),
    globals = globals_of(),
    modules = modules_of(),
  }
end

return facts
