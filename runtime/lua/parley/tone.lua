-- parley.tone: the bot's tone of voice. Holds the persona, the message
-- templates by locale and key (each with one or more variations) and the
-- optional style hook, and renders a key into the words the shopper reads.
--
-- Which variation is used is chosen by a hash of the session, the turn and
-- the key, so a conversation replays to the same words.
--
-- The persona may give fields per locale (persona = {name = "Bea", emoji =
-- true, es = {emoji = false}}): a locale's persona is the base one with its
-- locale's fields over it, and that is what {persona.x}, emoji = false and
-- the style hook's info.persona see in that locale.
local _, internal = ...
local text = require "parley.text"
local util = require "parley.util"

local tone = {}
tone.__index = tone

local EMPTY = {} -- the vars of a template said without any (only read)
local parse -- a template's pieces, defined with the interpolation below

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

-- The two-letter language codes (ISO 639-1): a persona table under one of
-- these names that is not one of the bot's locales looks like a mistake.
local LANGUAGES = {}
for code in ([[aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch
  co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu
  gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km
  kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb
  nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
  sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug
  uk ur uz ve vi vo wa wo xh yi yo za zh zu]]):gmatch("%l%l") do
  LANGUAGES[code] = true
end

-- Whether a persona field's name is a language tag ("fr", "pt-BR").
local function is_language(name)
  if type(name) ~= "string" then return false end
  local lang = name:match("^(%l%l)$") or name:match("^(%l%l)%-%u%u$")
  return lang ~= nil and LANGUAGES[lang] == true
end

-- The persona of each of the manifest's locales: the base fields of
-- persona with persona[locale]'s over them. A table under one of the
-- bot's locales holds that locale's fields; anything else is a base field
-- (persona.id = "bea-01" in a bot whose locales include "id", persona.bio
-- = {short = ...}). Warns of a table under a language the bot does not
-- have ("fr" in an en/es bot), which stays a base field.
local function personas_of(persona, locales, where, source, warnings)
  local is_locale, base = {}, {}
  for _, l in ipairs(locales) do is_locale[l] = true end
  for k, v in pairs(persona) do
    if not (is_locale[k] and type(v) == "table") then
      base[k] = v
      if type(v) == "table" and is_language(k) then
        warnings[#warnings + 1] = string.format("%s:%d: persona.%s looks meant for the locale '%s', which is not one of "
          .. "the bot's locales (%s): it is kept as a field of the base persona, laid over no locale's persona",
          where, util.line_of(source, k), k, k, table.concat(locales, ", "))
      end
    end
  end
  local personas = {}
  for _, l in ipairs(locales) do
    local merged = {}
    for k, v in pairs(base) do merged[k] = v end
    local own = persona[l]
    for k, v in pairs(type(own) == "table" and own or EMPTY) do merged[k] = v end
    personas[l] = merged
  end
  return personas
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
  -- the methods as fields of its own, so that calling one (every c:say
  -- does) is a plain lookup, not a detour through the metatable (the class
  -- stays its __index: parley test --coverage counts with its plain ones)
  for name, fn in pairs(tone) do
    if type(fn) == "function" and name ~= "new" then self[name] = fn end
  end
  if self.style ~= nil and type(self.style) ~= "function" then fail(where, source, "style", "style must be a function(text, info)") end
  if type(self.persona) ~= "table" then fail(where, source, "persona", "persona must be a table") end
  self.personas = personas_of(self.persona, locales, where, source, self.warnings)
  self.persona = self.personas[default] -- (the default locale's)
  for locale, keys in pairs(templates) do
    if type(keys) ~= "table" then fail(where, source, locale, string.format("templates.%s must be a table of templates", locale)) end
    local checked = {}
    for key, v in pairs(keys) do
      checked[key] = check_variations(where, source, locale, key, v)
      -- (c:say's key is a string: tone:say finds no other, see there)
      if type(key) ~= "string" then self.odd_keys = true end
    end
    self.templates[locale] = checked
    for _, variations in pairs(checked) do
      for _, template in ipairs(variations) do parse(template) end
    end
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

-- The persona in locale: the base persona with that locale's fields.
function tone:persona_of(locale)
  return self.personas[locale] or self.persona
end

function tone:has(key, locale)
  return (self.templates[locale] or EMPTY)[key] ~= nil or self.templates[self.default_locale][key] ~= nil
end

-- A template is parsed once (every template of the tone at load, see
-- tone.new): the text between its placeholders and, for each placeholder,
-- where its value comes from. Rendering then only looks values up and
-- joins the pieces, with no pattern matching per message. Keyed by the
-- template's text, so a list of variations changed at run time still works.
-- The placeholders are what gsub("{([%w_%.]+)}") finds, and each is looked
-- up as before: {name} in vars, {a.b} along vars.a.b, {persona.x} in the
-- persona (the name shown when it is missing is then "x").
local parsed = {}
local NONE = false -- a template without placeholders

local function placeholder(name)
  local ph = { name = name }
  if not name:find(".", 1, true) then return ph end
  ph.dotted = true
  ph.stripped = name:sub(9) -- what the name is once "persona." is taken off
  ph.persona = name:sub(1, 8) == "persona."
  local parts, stripped_parts = {}, {}
  for part in name:gmatch("[^.]+") do parts[#parts + 1] = part end
  for part in ph.stripped:gmatch("[^.]+") do stripped_parts[#stripped_parts + 1] = part end
  ph.parts, ph.stripped_parts = parts, stripped_parts
  return ph
end

-- {lit0, ph1, lit1, ph2, lit2, ...}, or NONE. A placeholder is its name
-- when it has no dot (then pieces.plain is true for all of them), else
-- what placeholder() makes of it.
function parse(template)
  local p = parsed[template]
  if p ~= nil then return p end
  p = NONE
  if template:find("{", 1, true) then
    local pieces, pos, plain = {}, 1, true
    while true do
      local from, to, name = template:find("{([%w_%.]+)}", pos)
      if not from then break end
      local ph = placeholder(name)
      plain = plain and not ph.dotted
      pieces[#pieces + 1] = template:sub(pos, from - 1)
      pieces[#pieces + 1] = ph
      pos = to + 1
    end
    if #pieces > 0 then
      pieces[#pieces + 1] = template:sub(pos)
      if plain then
        for i = 2, #pieces, 2 do pieces[i] = pieces[i].name end
        pieces.plain = true
      end
      p = pieces
    end
  end
  parsed[template] = p
  return p
end

-- The text of placeholder ph, or nil and the name to report as missing.
local function value_of(ph, vars, persona)
  local v
  if not ph.dotted then
    v = vars[ph.name]
    if v == nil then return nil, ph.name end
    return tostring(v)
  end
  local parts, name = ph.parts, ph.name
  if ph.persona then
    v, parts, name = persona, ph.stripped_parts, ph.stripped
  else
    v = vars
    -- (the vars may be the persona table itself: its names lose 8 bytes)
    if v == persona then parts, name = ph.stripped_parts, ph.stripped end
  end
  for i = 1, #parts do
    if type(v) ~= "table" then v = nil break end
    v = v[parts[i]]
  end
  if v == nil then return nil, name end
  return tostring(v)
end

-- Replaces {name} and {a.b} from vars; {persona.name} is always available.
-- pieces: what parse() made of the template (not NONE). Returns the text,
-- or nil and a message when a placeholder has no value.
local NOT_GIVEN = "template '%s' (%s) needs {%s}, but it was not given"
local fill_plain = internal.fill -- (plain names: the text, or nil and the missing name)

local function fill(self, pieces, vars, key, locale)
  local persona, n, missing = self.personas[locale] or self.persona, #pieces, nil
  if pieces.plain then
    local s
    s, missing = fill_plain(pieces, vars)
    if s then return s end
  elseif n == 3 then
    local a, m = value_of(pieces[2], vars, persona)
    if a then return pieces[1] .. a .. pieces[3] end
    missing = m
  else
    -- (made with room for four placeholders, the most the tones use)
    local out = { pieces[1], "", "", "", "", "", "", "", "" }
    for i = 2, n, 2 do
      local v, m = value_of(pieces[i], vars, persona)
      out[i], out[i + 1] = v or "", pieces[i + 1]
      missing = missing or m
    end
    if not missing then return table.concat(out, "", 1, n) end
  end
  return nil, string.format(NOT_GIVEN, key, locale, missing)
end

-- Replaces {name} and {a.b} from vars; {persona.name} is always available.
-- Returns the text, or nil and a message when a placeholder has no value.
function tone:interpolate(template, vars, key, locale)
  local pieces = parsed[template]
  if pieces == nil then pieces = parse(template) end
  if not pieces then return template end
  return fill(self, pieces, vars, key, locale)
end

-- The seed_base of conversation c: bot, channel, shopper and turn, made
-- once per turn when a template with variations first needs it.
local function seed_of(c)
  local seed = c.seed_base
  if not seed then
    seed = c.bot.name .. "/" .. c.channel.name .. "/" .. c.user .. "/" .. c.session.turn .. "/"
    c.seed_base = seed
  end
  return seed
end

-- The text of template key in locale before the persona and style: what
-- tone:render gives. (Written out again in tone:say, which saves a call.)
local function words(self, key, vars, locale, seed_base, n)
  local templates = self.templates
  local variations = (templates[locale] or EMPTY)[key] or templates[self.default_locale][key]
  if not variations then return nil, string.format("no template '%s' in scripts/tone.lua", key) end
  local template = variations[1]
  local count = #variations
  if count > 1 then
    if type(seed_base) == "table" then seed_base = seed_of(seed_base) end
    template = variations[text.hash(seed_base .. n .. "\0" .. key) % count + 1]
  end
  local pieces = parsed[template]
  if pieces == nil then pieces = parse(template) end
  if not pieces then return template end
  return fill(self, pieces, vars or EMPTY, key, locale)
end

-- Renders key in locale. Which variation is used depends only on
-- seed_base .. n (session, turn and position in the turn), so a replayed
-- conversation says the same words; seed_base is that text, or the
-- conversation whose it is. Returns the text, or nil and a message.
function tone:render(key, vars, locale, seed_base, n)
  return words(self, key, vars, locale, seed_base, n)
end

-- Emoji are removed when the persona of the text's locale has emoji =
-- false: what Unicode shows as emoji (internal.strip_emoji, see
-- pl_text_strip_emoji: flags, keycaps, skin tones and joined sequences
-- whole), with the space each needed; symbols such as − → ✓ € stay.
local strip = internal.strip_emoji -- (s, 0 when it has none; nothing: not UTF-8)

-- What strip_emoji gives for s, of which strip(s) gave stripped and a
-- count that is not 0. Text that is not valid UTF-8 raises, as the code
-- point by code point way always did.
local function stripped_text(s, stripped)
  if stripped then return stripped end
  for _ in utf8.codes(s) do end -- (raises "invalid UTF-8 code")
  error("invalid UTF-8 code", 0)
end

local function strip_emoji(s)
  local stripped, removed = strip(s)
  if removed == 0 then return s end
  return stripped_text(s, stripped)
end

-- What strip_emoji gave for a text (a string) it has seen: a bot says the
-- same sentences and choice titles again and again, and looking one up is
-- a fraction of scanning it again. Only texts of UTF-8 (those that strip
-- without raising) of at most KEPT_TEXT bytes are kept, up to KEPT_BYTES
-- of them: then the lot is forgotten, as c:price's prices are. (A longer
-- text is scanned each time: its scan is charged to the run, a lookup's
-- hashing of it would not be.)
local stripped_texts, kept_bytes, KEPT_BYTES, KEPT_TEXT = {}, 0, 64 * 1024, 512

local function kept(s, stripped)
  if #s > KEPT_TEXT then return stripped end
  if kept_bytes >= KEPT_BYTES then stripped_texts, kept_bytes = {}, 0 end
  stripped_texts[s] = stripped
  kept_bytes = kept_bytes + #s
  return stripped
end

local function strip_text(s)
  if #s > KEPT_TEXT then return strip_emoji(s) end
  local done = stripped_texts[s]
  if done then return done end
  local stripped, removed = strip(s)
  if removed == 0 then return kept(s, s) end
  return kept(s, stripped_text(s, stripped))
end

-- The info a style hook gets with each text (docs/bots.md#the-style-hook).
local function style_info(self, c, kind, key)
  local locale = c.locale
  return { locale = locale, persona = self.personas[locale] or self.persona, key = key,
           channel = c.channel.name, kind = kind }
end

-- Applies the persona and the style hook to an outgoing text of
-- conversation c, in c's locale.
local STYLE_NO_STRING = "the style hook in scripts/tone.lua must return a string"

function tone:finish(s, c, kind, key)
  if (self.personas[c.locale] or self.persona).emoji == false then s = strip_emoji(s) end
  local style = self.style
  if style then
    s = style(s, style_info(self, c, kind, key))
    if type(s) ~= "string" then error(STYLE_NO_STRING, 0) end
  end
  return s
end

-- tone:finish(title, c, "choice") for the titles of choices[from..to]
-- when the tone has no style hook (and a persona without emoji): they are
-- stripped of emoji. A title that is not UTF-8 raises, as it always did,
-- and the choices from it on are not in the list then.
function tone:strip_titles(choices, from, to)
  for k = from, to do -- (strip_emoji, written out)
    local choice = choices[k]
    local title = choice.title
    local done = #title <= KEPT_TEXT and stripped_texts[title]
    if done then
      if done ~= title then choice.title = done end
    else
      local stripped, removed = strip(title)
      if removed == 0 then
        kept(title, title)
      elseif not stripped then
        local rest = {}
        for j = to, k, -1 do rest[j], choices[j] = choices[j], nil end
        choice.title = stripped_text(title, stripped) -- (raises)
        for j = k, to do choices[j] = rest[j] end
      else
        choice.title = kept(title, stripped)
      end
    end
  end
end

-- The text of a reply of conversation c that says template key: what
-- c:t(key, vars) gives (the turn's next text: c.said counts them), then
-- tone:finish(text, c, "text", key). Returns it, or nil and a message.
--
-- A key that is not a string gives nil and no message (c:say raises for
-- it), and is not counted as a text of the turn: it is looked up first
-- (there is none among the keys of a tone without odd_keys), then checked.
function tone:say(c, key, vars)
  local locale, templates = c.locale, self.templates
  local variations = (templates[locale] or EMPTY)[key] or templates[self.default_locale][key]
  if variations == nil or (self.odd_keys and type(key) ~= "string") then
    if type(key) ~= "string" then return nil end
    c.said = c.said + 1
    return nil, string.format("no template '%s' in scripts/tone.lua", key)
  end
  local n = c.said + 1
  c.said = n
  local s = variations[1]
  local count = #variations
  if count > 1 then s = variations[text.hash(seed_of(c) .. n .. "\0" .. key) % count + 1] end
  local pieces = parsed[s]
  if pieces == nil then pieces = parse(s) end
  if pieces then
    local err
    if pieces.plain then
      s, err = fill_plain(pieces, vars or EMPTY)
      if not s then return nil, string.format(NOT_GIVEN, key, locale, err) end
    else
      s, err = fill(self, pieces, vars or EMPTY, key, locale)
      if not s then return nil, err end
    end
  end
  if (self.personas[locale] or self.persona).emoji == false then -- (strip_text, its lookup written out)
    s = #s <= KEPT_TEXT and stripped_texts[s] or strip_text(s)
  end
  local style = self.style -- (tone:finish, written out)
  if style then
    s = style(s, style_info(self, c, "text", key))
    if type(s) ~= "string" then error(STYLE_NO_STRING, 0) end
  end
  return s
end

return tone
