-- A fixture of tests/e2e/test_check.py: a module a step would require.
local M = {}

function M.total(items)
  local sum = = 0 -- MISTAKE: a syntax error
  for _, item in ipairs(items) do sum = sum + item.price end
  return sum
end

return M
