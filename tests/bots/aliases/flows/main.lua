-- The aliases fixture: one step that takes commands, so that specs can read
-- what flows see of a catalog's aliases in the shopper's locale:
--   aliases <sku> | find <words>
local commands = {}

-- "latte: caffè latte,latté | milk.oat: oatly | milk.soy: -"
function commands.aliases(c, sku)
  local p = c.catalog:get(sku)
  local parts = { p.sku .. ": " .. table.concat(p.aliases, ",") }
  for _, choice in ipairs(p.options and p.options.milk or {}) do
    parts[#parts + 1] = "milk." .. choice.value .. ": " .. (#choice.aliases > 0 and table.concat(choice.aliases, ",") or "-")
  end
  c:say_text(table.concat(parts, " | "))
end

function commands.find(c, words)
  local p = c.catalog:find(words)
  c:say_text("find: " .. (p and p.sku or "-"))
end

return {
  start = function(c)
    c:say "welcome"
    return "shop"
  end,

  shop = {
    answer = function(c, msg)
      local cmd, arg = (msg.text or ""):match("^(%S+)%s*(.-)%s*$")
      local run = commands[cmd or ""]
      if run then return run(c, arg) end
      c:say "welcome"
    end,
  },
}
