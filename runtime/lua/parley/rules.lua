-- parley.rules: the bot's product-recommendation rules. scripts/rules.lua
-- returns a list of rules, each a name and a score function
--   score(product, c) -> number [, reason]
-- The engine sums every rule's score per product, ranks the products (score,
-- then catalog order) and keeps the reason of the rule that gave most.
local util = require "parley.util"

local rules = {}
rules.__index = rules

local function fail(where, source, name, msg)
  error(string.format("%s:%d: %s", where, util.line_of(source, name), msg), 0)
end

-- Validates the table returned by scripts/rules.lua.
function rules.new(def, where, source)
  if type(def) ~= "table" then
    fail(where, source, "return", "must return a table: { rules = { {name =, score = function(product, c)} } }")
  end
  local list = def.rules or def
  local self = setmetatable({ list = {}, scores = {}, limit = def.limit or 3 }, rules)
  if math.type(self.limit) ~= "integer" or self.limit < 1 then fail(where, source, "limit", "limit must be a positive integer") end
  for i, rule in ipairs(list) do
    if type(rule) ~= "table" or type(rule.score) ~= "function" then
      fail(where, source, "rules", string.format("rule %d must be a table {name = '...', score = function(product, c) ... end}", i))
    end
    self.list[i] = { name = rule.name or ("rule " .. i), score = rule.score }
    self.scores[i] = rule.score
  end
  return self
end

-- An empty rule set, for bots without scripts/rules.lua.
function rules.none() return setmetatable({ list = {}, scores = {}, limit = 3 }, rules) end

-- Best first: score, then catalog order.
local function by_rank(a, b)
  if a.score ~= b.score then return a.score > b.score end
  return a.product.position < b.product.position
end

-- Ranks candidate products for conversation c. opts.limit caps the list.
-- Returns { {product =, score =, reason =, rule =}, ... }, best first; only
-- products some rule scored above zero.
function rules:rank(candidates, c, opts)
  local ranked, scores = {}, self.scores -- (scores[r] is self.list[r].score)
  local i, p = 1, candidates[1]
  while p ~= nil do -- (ipairs' walk)
    local total, best, reason, rule_name = 0, 0, nil, nil
    for r = 1, #scores do
      local score, why = scores[r](p, c)
      if score ~= nil then -- (nil counts as 0, which changes neither total nor best)
        if type(score) ~= "number" then
          error(string.format("rule '%s' returned a %s; a rule returns a number (and a reason)", self.list[r].name,
            type(score)), 0)
        end
        total = total + score
        if score > best then best, reason, rule_name = score, why, self.list[r].name end
      end
    end
    if total > 0 then ranked[#ranked + 1] = { product = p, score = total, reason = reason, rule = rule_name } end
    i = i + 1
    p = candidates[i]
  end
  table.sort(ranked, by_rank)
  local limit = opts and opts.limit or self.limit
  for k = #ranked, limit + 1, -1 do ranked[k] = nil end
  return ranked
end

return rules
