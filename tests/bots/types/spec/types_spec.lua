-- The LuaLS definitions in runtime/types/ against the runtime itself: every
-- definition file parses, and the names each class declares are exactly the
-- names its live object has (a method without a definition, or a
-- definition of something that does not exist, fails here). The bot's
-- objects are read inside the bot's sandbox by flows/main.lua; the testing
-- helper's here, in the spec's own state.
local testing = require "parley.testing"
local json = require "json"

-- parley test runs busted inside the bot's folder (spec/x_spec.lua)
local here = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") or "."
local types_dir = here .. "/../../../runtime/types"

local FILES = { "parley.lua", "scripts.lua", "testing.lua", "json.lua", "log.lua", "text.lua", "money.lua", "http.lua" }

-- Keys the live objects have that are the runtime's own business, not the
-- bot author's: each is left out of the comparison, with why.
local INTERNAL = {
  ["parley.Conversation"] = {
    bot = "the loaded bot", session = "the stored session", out = "this turn's replies", said = "texts said this turn",
    frame = "the dialog stack's top", effects = "jobs and handoff for the commit",
    recommended = "c:recommend's answers this turn", seed_base = "the tone's variation seed",
  },
  ["parley.Cart"] = {
    raw = "the session's cart table", view = "the catalog view", version = "changes this turn",
    discounts = "bot.json's codes", owner = "the conversation, for analytics", tags = "a cache", skus = "a cache",
    new = "parley.cart's constructor, reached through the metatable", of = "likewise",
    __index = "the metatable itself",
  },
  ["parley.Catalog"] = {
    list = "the view's products", catalog = "the catalog of every locale", index = "sku -> position",
    tagged = "a cache by tag", __index = "the metatable itself",
  },
  ["parley.Product"] = { tagset = "the tags as a set, for has_tag", position = "the catalog order, for ranking" },
  ["parley.testing"] = { install_hooks = "parley test calls it once, before any spec file loads" },
  ["parley.testing.Chat"] = {
    __index = "the metatable itself", order_id = "the last confirmed order", pushed_since = "chat:pushed's mark",
  },
}

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end

-- The classes the files declare: { [class] = { [name] = "field" | "method" } }.
local function declared_names()
  local classes, class_of_local = {}, {}
  for _, file in ipairs(FILES) do
    local current
    for line in read(types_dir .. "/" .. file):gmatch("[^\n]*") do
      local class = line:match("^%-%-%-@class%s+([%w_.]+)")
      if class then
        current = class
        classes[class] = classes[class] or {}
      end
      local field = line:match("^%-%-%-@field%s+([%w_]+)")
      if field and current then classes[current][field] = "field" end
      local var = line:match("^local%s+([%w_]+)%s*=%s*{}")
      if var and current then class_of_local[var] = current end
      local owner, name = line:match("^function%s+([%w_]+)[:.]([%w_]+)%s*%(")
      if owner then
        assert(class_of_local[owner], file .. ": function " .. owner .. "." .. name .. " of no class")
        classes[class_of_local[owner]][name] = "method"
      end
      if line:match("^%-%-%-@alias") then current = nil end
    end
  end
  return classes
end

local function sorted(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- Compares the live names of a class (a set) with its definition.
local function same_names(class, live, classes)
  local declared = assert(classes[class], "runtime/types/ defines no class " .. class)
  local internal = INTERNAL[class] or {}
  local undeclared, absent = {}, {}
  for name in pairs(live) do
    if not declared[name] and not internal[name] then undeclared[name] = true end
  end
  for name in pairs(declared) do
    if not live[name] then absent[name] = true end
  end
  assert.same({}, sorted(undeclared), class .. ": the runtime has these, runtime/types/ does not declare them")
  assert.same({}, sorted(absent), class .. ": runtime/types/ declares these, the runtime has none")
end

-- What flows/main.lua reported, merged over the turns.
local function merge(into, report)
  for class, r in pairs(json.decode(report)) do
    into[class] = into[class] or {}
    for _, name in ipairs(r.names) do into[class][name] = true end
    for _, name in ipairs(r.present) do into[class][name] = true end
  end
end

describe("runtime/types", function()
  it("every definition file parses", function()
    for _, file in ipairs(FILES) do
      local chunk, err = load(read(types_dir .. "/" .. file), "@" .. file, "t")
      assert.is_nil(err)
      assert.is_function(chunk)
    end
  end)

  it("names of the bot's live objects are the names defined, both ways", function()
    local classes = declared_names()
    local probes = {}
    for class, names in pairs(classes) do probes[class] = sorted(names) end
    local live = {}
    local chat = testing.conversation { locale = "en" }
    chat:send(json.encode(probes))
    assert.same({}, testing.errors())
    merge(live, chat:texts()[1])
    chat:send "Pay" -- typed: msg.choice as well as msg.payload
    merge(live, chat:texts()[1])
    assert.equal(200, (chat:pay()))
    merge(live, chat:pushed_text())
    assert.same({}, testing.errors())
    local checked = 0
    for class, names in pairs(live) do
      same_names(class, names, classes)
      checked = checked + 1
    end
    assert.equal(13, checked)
  end)

  it("names of the testing helper are the names defined, both ways", function()
    local classes = declared_names()
    local function live_names(v)
      local out, seen = {}, {}
      while type(v) == "table" and not seen[v] do
        seen[v] = true
        for k in pairs(v) do if type(k) == "string" then out[k] = true end end
        local mt = getmetatable(v)
        v = mt and mt.__index
      end
      return out
    end
    same_names("parley.testing", live_names(testing), classes)
    local chat = testing.conversation { locale = "en", info = { platform = "spec" } }
    chat:send "hi"
    local names = live_names(chat)
    names.failed = true -- set by a turn that failed (tests/spec_runtime/ checks its message)
    same_names("parley.testing.Chat", names, classes)
  end)
end)
