---@meta http
-- require "http": outbound HTTP for bot scripts, only to the hosts bot.json
-- allows ("http": {"allow": [...]}). The turn waits for the answer without
-- blocking other shoppers (docs/commerce.md#outbound-http-from-scripts).

---@class http
local http = {}

---@class http.Request
---@field url string
---@field method? string "GET", or "POST" when there is a body
---@field headers? table<string, string|number>
---@field body? string
---@field json? any sent as JSON (Content-Type: application/json)
---@field timeout? number seconds (default 10, at most 10)

---@class http.Response
---@field status integer
---@field body string
---@field json? any the body decoded, when it is JSON

---@alias http.Failure "timeout"|"unreachable"|"refused"|"too-large"

---@param req http.Request
---@return http.Response|nil res
---@return http.Failure|string|nil err
function http.request(req) end

---@param url string
---@param opts? http.Request
---@return http.Response|nil res
---@return http.Failure|string|nil err
function http.get(url, opts) end

---Posts value as JSON.
---@param url string
---@param value any
---@param opts? http.Request
---@return http.Response|nil res
---@return http.Failure|string|nil err
function http.post(url, value, opts) end

return http
