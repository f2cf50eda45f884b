-- parley.money: formatting integer minor units as prices, per currency and
-- locale. Money is never a float in parley: 450 EUR means 4.50 EUR.
local money = {}

-- ISO 4217 minor-unit digits where they are not 2.
local decimals = { JPY = 0, KRW = 0, VND = 0, CLP = 0, ISK = 0, HUF = 2, BHD = 3, KWD = 3, TND = 3 }
local symbols = { EUR = "€", USD = "$", GBP = "£", JPY = "¥", CHF = "CHF ", CNY = "¥", INR = "₹" }
-- Locales that write the amount first with a decimal comma: 4,50 €
local comma_after = { de = true, fr = true, it = true, es = true, nl = true, pt = true }

function money.decimals(currency)
  return decimals[currency] or 2
end

local function group(digits, sep)
  local out = digits:reverse():gsub("(%d%d%d)", "%1" .. sep):reverse()
  if out:sub(1, #sep) == sep then out = out:sub(#sep + 1) end
  return out
end

local memo, memo_size = {}, 0

-- money.format(450, "EUR", "en") -> "€4.50"; (450, "JPY", "ja") -> "¥450";
-- (450, "EUR", "de") -> "4,50 €". Results are remembered (catalog prices
-- repeat in every menu), up to a few thousand.
function money.format(amount, currency, locale)
  assert(math.type(amount) == "integer", "money amounts are integers in minor units")
  local key = currency .. (locale or "") .. amount
  local hit = memo[key]
  if hit then return hit end
  local text = money.compose(amount, currency, locale)
  if memo_size >= 4096 then memo, memo_size = {}, 0 end
  memo[key], memo_size = text, memo_size + 1
  return text
end

function money.compose(amount, currency, locale)
  local lang = (locale or "en"):match("^(%a+)") or "en"
  local d = money.decimals(currency)
  local negative = amount < 0
  local units = math.abs(amount)
  local major = tostring(units // (10 ^ d | 0))
  local minor = d > 0 and string.format("%0" .. d .. "d", units % (10 ^ d | 0)) or nil
  local comma = comma_after[lang]
  major = group(major, comma and "." or ",")
  local number = minor and (major .. (comma and "," or ".") .. minor) or major
  local symbol = symbols[currency]
  local text
  if comma then
    text = number .. " " .. (symbol and symbol:gsub("%s+$", "") or currency)
  elseif symbol then
    text = symbol .. number
  else
    text = number .. " " .. currency
  end
  return negative and ("-" .. text) or text
end

return money
