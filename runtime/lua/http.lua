-- http: outbound HTTP for bot scripts (the C half is parley.http). The
-- turn waits for the answer without blocking other shoppers.
--
--   local http = require "http"
--   local res, err = http.request{ method = "POST", url = "https://api.shop.example/orders",
--                                  json = { id = 42 }, headers = { ["X-Key"] = "..." }, timeout = 5 }
--   if not res then log.warn("fulfilment API: ", err) end
--   -- res.status, res.body, res.json (when the body is JSON)
--   -- err: "timeout", "unreachable", "refused" (a loopback or private
--   -- address), "too-large" (an answer over 1 MB)
--
-- Only URLs under an entry of bot.json "http": {"allow": [...]} can be called
-- (same scheme, host and port, the path on a segment boundary); redirects are
-- not followed, and timeouts are capped at 10 s.
local native = require "parley.http"
local json = require "json"

local http = {}

function http.request(req)
  if type(req) ~= "table" or type(req.url) ~= "string" then
    error("http.request{url =, method =, headers =, body = | json =, timeout =}", 2)
  end
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = tostring(v) end
  local body = req.body
  if req.json ~= nil then
    body = json.encode(req.json)
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  local timeout = math.floor((req.timeout or 10) * 1000)
  local res, err = native.request(req.method or (body and "POST" or "GET"), req.url, headers, body, timeout)
  if not res then return nil, err end
  if res.body:match("^%s*[%[{]") then res.json = json.decode(res.body) end
  return res
end

function http.get(url, opts)
  opts = opts or {}
  opts.url, opts.method = url, "GET"
  return http.request(opts)
end

function http.post(url, value, opts)
  opts = opts or {}
  opts.url, opts.method, opts.json = url, "POST", value
  return http.request(opts)
end

return http
