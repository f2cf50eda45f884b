---@meta parley.text
-- require "parley.text": the text folding parley's search and router use
-- (docs/lua-api.md#modules).

---@class parley.text
local text = {}

---Case-, accent- and width-folded text, punctuation as spaces: "Café-Crème!" -> "cafe creme".
---@param s string
---@return string|nil folded
---@return "invalid-utf8"|nil err
function text.fold(s) end

---Whether the folded phrase is in the folded text as whole words (anywhere, in scripts
---without spaces such as Japanese).
---@param folded_text string
---@param folded_phrase string
---@return boolean
function text.has_phrase(folded_text, folded_phrase) end

---A stable non-negative hash of s (the same in every run and on every node).
---@param s string
---@return integer
function text.hash(s) end

---The text without its emoji (what Unicode shows as emoji: pictographs, anything with
---U+FE0F, keycaps, flags, skin tones and joined sequences) and the space an emoji stood
---beside; minus signs, arrows, currency and text symbols (✓ ★ ♥), CJK stay.
---@param s string
---@return string
function text.strip_emoji(s) end

return text
