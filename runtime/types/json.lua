---@meta json
-- require "json": JSON for bot scripts, backed by jansson, under the turn's
-- budgets (docs/lua-api.md#modules).

---@class json
---@field null lightuserdata JSON's null: a value that stands for null in tables (a nil would leave a hole)
local json = {}

---Encodes a value as JSON text. Raises for what JSON cannot hold (functions, NaN, lists
---with holes, text or keys that are not UTF-8, nesting deeper than 64), naming the key path.
---@param value any
---@param opts? { pretty?: boolean }
---@return string
function json.encode(value, opts) end

---Decodes JSON text; nil and "line N: ..." on bad input.
---@param text string
---@return any value
---@return string|nil err
function json.decode(text) end

---Marks a table to be encoded as a list, even when empty (`[]` rather than `{}`).
---@generic T: table
---@param t? T
---@return T
function json.array(t) end

return json
