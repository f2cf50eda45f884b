-- A fixture of tests/e2e/test_check.py: a bot `parley check` must pass
-- with no error and no warning (see README beside it).
local api = require "lib.api"

return {
  start = function(c)
    api.greet(c)
    return "start"
  end,
}
