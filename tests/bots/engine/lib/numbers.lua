-- lib/numbers.lua: a module of the bot itself, reached with require.
local numbers = {}
function numbers.parse(text) return math.tointeger(tonumber(text)) end
return numbers
