---@meta log
-- require "log": lines in the server log with the bot's name and your
-- file:line (docs/lua-api.md#modules). `print` writes to the log too.

---@class log
local log = {}

---@param ... any the values, joined like print's
function log.debug(...) end

---@param ... any
function log.info(...) end

---@param ... any
function log.warn(...) end

---@param ... any
function log.error(...) end

return log
