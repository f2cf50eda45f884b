---@meta parley.money
-- require "parley.money": amounts as shoppers read them. Money is an integer
-- in minor units with an ISO 4217 currency (`c:price` is the usual way).

---@class parley.money
local money = {}

---450 EUR in "en" -> "€4.50"; in "de" -> "4,50 €"; 450 JPY -> "¥450".
---@param amount integer minor units
---@param currency string ISO 4217
---@param locale? string
---@return string
function money.format(amount, currency, locale) end

---The currency's minor-unit digits (ISO 4217): 2 for EUR, 0 for JPY, 3 for KWD.
---@param currency string
---@return integer
function money.decimals(currency) end

return money
