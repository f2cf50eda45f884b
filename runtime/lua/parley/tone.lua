-- parley.tone: the bot's tone of voice. Holds the persona, the message
-- templates by locale and key (each with one or more variations) and the
-- optional style hook, and renders a key into the words the shopper reads.
--
-- Which variation is used is chosen by a hash of the session, the turn and
-- the key, so a conversation replays to the same words.
local text = require "parley.text"
local util = require "parley.util"

local tone = {}
tone.__index = tone

-- Raises "file:line: msg", the line being where `name` is defined.
local function fail(where, source, name, msg)
  error(string.format("%s:%d: %s", where, util.line_of(source, name), msg), 0)
end

local function check_variations(where, source, locale, key, v)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or #v == 0 then
    fail(where, source, key, string.format("template '%s' (%s) must be a string or a list of strings", key, locale))
  end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then
      fail(where, source, key, string.format("template '%s' (%s) variation %d is a %s, not a string", key, locale, i, type(s)))
    end
  end
  return v
end

-- Validates the table returned by scripts/tone.lua. `where` is the file
-- name for messages; `locales` the manifest's list (first is the default).
function tone.new(def, where, locales, source)
  if type(def) ~= "table" then fail(where, source, "return", "must return a table with persona and templates") end
  local templates = def.templates
  if type(templates) ~= "table" then
    fail(where, source, "templates", "needs a templates table: templates = { en = { greet = ... } }")
  end
  local default = locales[1]
  if type(templates[default]) ~= "table" then
    fail(where, source, "templates", string.format("has no templates for the default locale '%s'", default))
  end
  local self = setmetatable({
    persona = def.persona or {},
    style = def.style,
    templates = {},
    default_locale = default,
    warnings = {},
  }, tone)
  if self.style ~= nil and type(self.style) ~= "function" then fail(where, source, "style", "style must be a function(text, info)") end
  if type(self.persona) ~= "table" then fail(where, source, "persona", "persona must be a table") end
  for locale, keys in pairs(templates) do
    if type(keys) ~= "table" then fail(where, source, locale, string.format("templates.%s must be a table of templates", locale)) end
    local checked = {}
    for key, v in pairs(keys) do checked[key] = check_variations(where, source, locale, key, v) end
    self.templates[locale] = checked
  end
  if not self.templates[default].fallback then
    fail(where, source, default, string.format("needs a 'fallback' template in '%s': what the shopper reads when something goes wrong", default))
  end
  for _, locale in ipairs(locales) do
    local missing = {}
    for key in pairs(self.templates[default]) do
      if not (self.templates[locale] or {})[key] then missing[#missing + 1] = key end
    end
    table.sort(missing)
    if #missing > 0 then
      self.warnings[#self.warnings + 1] = string.format("%s: locale '%s' has no %s (the %s text is used)",
        where, locale, table.concat(missing, ", "), default)
    end
  end
  return self
end

function tone:has(key, locale)
  return (self.templates[locale] or {})[key] ~= nil or self.templates[self.default_locale][key] ~= nil
end

-- Interpolation state for the substitution function below; set right
-- before each gsub (which cannot yield), so no closure is made per render.
local current_vars, current_persona, missing

local function substitute(name)
  local v
  if name:find(".", 1, true) then
    v = name:sub(1, 8) == "persona." and current_persona or current_vars
    if v == current_persona then name = name:sub(9) end
    for part in name:gmatch("[^.]+") do
      if type(v) ~= "table" then v = nil break end
      v = v[part]
    end
  else
    v = current_vars[name]
  end
  if v == nil then
    missing = missing or name
    return ""
  end
  return tostring(v)
end

-- Replaces {name} and {a.b} from vars; {persona.name} is always available.
-- Returns the text, or nil and a message when a placeholder has no value.
function tone:interpolate(template, vars, key, locale)
  if not template:find("{", 1, true) then return template end
  current_vars, current_persona, missing = vars, self.persona, nil
  local out = template:gsub("{([%w_%.]+)}", substitute)
  current_vars, current_persona = nil, nil
  if missing then
    return nil, string.format("template '%s' (%s) needs {%s}, but it was not given", key, locale, missing)
  end
  return out
end

-- Renders key in locale. Which variation is used depends only on
-- seed_base .. n (session, turn and position in the turn), so a replayed
-- conversation says the same words. Returns the text, or nil and a message.
function tone:render(key, vars, locale, seed_base, n)
  local variations = (self.templates[locale] or {})[key] or self.templates[self.default_locale][key]
  if not variations then return nil, string.format("no template '%s' in scripts/tone.lua", key) end
  local pick = 1
  if #variations > 1 then pick = text.hash(seed_base .. n .. "\0" .. key) % #variations + 1 end
  return self:interpolate(variations[pick], vars or {}, key, locale)
end

-- Emoji and pictographs, removed when persona.emoji is false, together
-- with the space they leave behind.
local function strip_emoji(s)
  local out, removed = {}, false
  for _, cp in utf8.codes(s) do
    local emoji = (cp >= 0x1F000 and cp <= 0x1FAFF) or (cp >= 0x2600 and cp <= 0x27BF)
      or cp == 0xFE0F or cp == 0x200D
    if emoji then removed = true else out[#out + 1] = utf8.char(cp) end
  end
  if not removed then return s end
  local text = table.concat(out):gsub("  +", " "):gsub(" ([!?.,;:])", "%1"):gsub("^%s+", ""):gsub("%s+$", "")
  return text
end

-- Applies the persona and the style hook to an outgoing text of
-- conversation c; the hook gets {locale, persona, key, channel, kind}.
function tone:finish(s, c, kind, key)
  if self.persona.emoji == false then s = strip_emoji(s) end
  if self.style then
    local info = { locale = c.locale, persona = self.persona, key = key, channel = c.channel.name, kind = kind }
    local styled = self.style(s, info)
    if type(styled) ~= "string" then error("the style hook in scripts/tone.lua must return a string", 0) end
    s = styled
  end
  return s
end

return tone
