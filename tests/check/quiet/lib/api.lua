-- Calls named like the conversation's whose receiver is something else:
-- an HTTP client's call, a logger's t. Only c's are checked.
local M = {}

function M.fetch(client, log)
  log:t("x")
  return client:call("orders", { id = 1 })
end

function M.greet(c)
  c:say "hello"
end

-- A global of the module's own that standard Lua has too: not the library.
debug = { trace = function() end }
function M.trace(what)
  debug.trace(what)
  os.pending = what -- a field set on a library
end

return M
