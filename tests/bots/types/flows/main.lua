-- The types fixture: it reports the names the live objects of a turn have
-- (the conversation, the message, cart, catalog, a product, an option and
-- its choice, what cart:add names as short, the modules), for spec/types_spec.lua to compare with the
-- LuaLS definitions in runtime/types/. The spec's first message is the
-- list of declared names to read (fields that a metatable computes, such
-- as p.stock, are found only by reading them); then a sub-flow returns (so
-- c.result is set), a tap brings msg.payload and msg.choice, and a payment
-- brings msg.payment and msg.event.
local json = require "json"
local log = require "log"
local text = require "parley.text"
local money = require "parley.money"
local http = require "http"

-- The string keys of v and of the tables its metatables' __index lead to.
local function names(v)
  local out, seen = {}, {}
  while type(v) == "table" and not seen[v] do
    seen[v] = true
    for k in pairs(v) do
      if type(k) == "string" then out[#out + 1] = k end
    end
    local mt = getmetatable(v)
    v = mt and mt.__index
  end
  return out
end

-- The declared names that read as something on v.
local function present(v, declared)
  local out = {}
  for _, name in ipairs(declared or {}) do
    if v[name] ~= nil then out[#out + 1] = name end
  end
  return out
end

local function report(c, objects)
  local probes = c.profile.probes or {}
  local out = {}
  for class, v in pairs(objects) do
    out[class] = { names = names(v), present = present(v, probes[class]) }
  end
  c:say_text(json.encode(out))
end

return {
  start = function(c, msg)
    -- the web chat panel's opening runs start with no text (msg.event.type "open")
    if msg.text == nil then
      c:say_text("Send me the names to probe, as JSON.")
      return
    end
    c.profile.probes = json.decode(msg.text)
    c.cart:add("tee", { options = { colour = { "red" } } })
    return c:call("sub", nil, "back")
  end,

  back = function(c, msg)
    local tee = c.catalog:get("tee")
    local _, _, short = c.cart:add("tee", { qty = 3, options = { colour = { "red" } } }) -- 4 red of 3
    report(c, {
      ["parley.Shortage"] = short,
      ["parley.Conversation"] = c, ["parley.Message"] = msg, ["parley.Cart"] = c.cart,
      ["parley.Catalog"] = c.catalog, ["parley.Product"] = tee, ["parley.Option"] = tee.options.colour,
      ["parley.OptionChoice"] = tee.options.colour[1],
      json = json, log = log, ["parley.text"] = text, ["parley.money"] = money, http = http,
    })
    c:choices { { title = "Pay", payload = "pay" } }
    return "pay"
  end,

  pay = {
    answer = function(c, msg)
      report(c, { ["parley.Message"] = msg })
      local order, why = c:checkout()
      if not order then
        c:say_text("no order: " .. tostring(why))
        return "pay"
      end
      c:link("Pay", order.payment_url)
      return "paid"
    end,
  },

  paid = {
    answer = function(c, msg)
      if msg.payment then report(c, { ["parley.Message"] = msg }) end
      return c:done()
    end,
  },
}
