-- parley.coverage: what `parley test --coverage` counts inside a bot's
-- state: which steps of the flows the engine entered and which templates of
-- the tone (key per locale) were rendered while the specs ran.
--
-- Only the spec runtime loads it (runtime/cli/coverage.c calls watch()
-- after the bot's scripts loaded, report() before the state goes): it
-- puts a counting proxy in front of each flow's table of steps and
-- counting say/render on the bot's tone, so serving never pays for it.
-- A step counts as reached when the engine looks it up by name to enter it
-- or to answer with it (its checks whether a step exists look behind the
-- proxy: engine.counted); a template when c:say, c:t or the engine's own
-- texts rendered it.
local _, internal = ...
local engine = require "parley.engine"

local coverage = {}
local reached = { steps = {}, templates = {} }
local watched = false

-- Where a step is defined: its function's, or its ask's or answer's.
local function where(step)
  if type(step) == "table" then step = step.ask or step.answer end
  if type(step) ~= "function" then return nil end
  return internal.where(step)
end

local function proxy_pairs(p) return next, getmetatable(p).real, nil end
local function proxy_len(p) return #getmetatable(p).real end

-- A table that reads through to flow `name`'s steps and notes each step
-- looked up by name.
local function counting_flow(name, steps)
  local proxy = setmetatable({}, {
    real = steps,
    __index = function(_, step)
      local found = steps[step]
      if found ~= nil and type(step) == "string" then reached.steps[name .. "." .. step] = true end
      return found
    end,
    __newindex = steps,
    __pairs = proxy_pairs,
    __len = proxy_len,
  })
  engine.counted[proxy] = steps
  return proxy
end

-- The locale whose template `key` is used for `locale` (the default
-- locale's when that locale has none).
local function locale_of(tone, key, locale)
  if (tone.templates[locale] or {})[key] ~= nil then return locale end
  return tone.default_locale
end

local function note_template(tone, key, locale)
  local used = locale_of(tone, key, locale)
  local keys = reached.templates[used]
  if not keys then
    keys = {}
    reached.templates[used] = keys
  end
  keys[key] = true
end

-- Counting versions of tone:say and tone:render, set on the bot's tone
-- itself (its class keeps the plain ones).
local function count_templates(tone)
  local class = getmetatable(tone).__index
  local say, render = class.say, class.render
  rawset(tone, "say", function(self, c, key, vars)
    local text, err = say(self, c, key, vars)
    if text then note_template(self, key, c.locale) end
    return text, err
  end)
  rawset(tone, "render", function(self, key, vars, locale, seed_base, n)
    local text, err = render(self, key, vars, locale, seed_base, n)
    if text then note_template(self, key, locale) end
    return text, err
  end)
end

-- watch(): from now on, counts what the bot's state reaches. Once per state.
function coverage.watch()
  if watched then return end
  watched = true
  local bot = engine.bot
  for name, steps in pairs(bot.flows) do bot.flows[name] = counting_flow(name, steps) end
  if bot.tone then count_templates(bot.tone) end
end

-- report() -> {steps = {["flow.step"] = {reached =, at = "file:line"}},
-- templates = {locale = {key = reached}}}: everything the bot has (the
-- templates of its manifest's locales), each with whether the specs
-- reached it in this state.
function coverage.report()
  local bot = engine.bot
  local steps, templates = {}, {}
  for name, proxy in pairs(bot.flows) do
    local real = getmetatable(proxy) and getmetatable(proxy).real or proxy
    for step, def in next, real do
      if type(step) == "string" then
        local id = name .. "." .. step
        steps[id] = { reached = reached.steps[id] == true, at = where(def) }
      end
    end
  end
  if bot.tone then
    for locale, keys in pairs(bot.tone.templates) do
      -- (texts of a locale bot.json does not have are never said)
      if not bot.locale_set[locale] then goto next_locale end
      local list = {}
      for key in next, keys do
        if type(key) == "string" then list[key] = (reached.templates[locale] or {})[key] == true end
      end
      templates[locale] = list
      ::next_locale::
    end
  end
  return { steps = steps, templates = templates }
end

return coverage
