-- scripts/router.lua: what the shopper can say at any point. An intent
-- interrupts the current step; c:resume() asks that step again afterwards.
local function cart_lines(c)
  local lines = {}
  for _, line in ipairs(c.cart:lines()) do
    lines[#lines + 1] = c:t("summary_line", {
      qty = line.qty, title = line.title,
      options = #line.option_titles > 0 and (" (" .. table.concat(line.option_titles, ", ") .. ")") or "",
      price = c:price(line.total, line.currency),
    })
  end
  return table.concat(lines, "\n")
end

return {
  help = {
    match = {
      en = { "help", "what can you do", "how does this work", "?" },
      ja = { "ヘルプ", "助けて", "使い方", "？" },
    },
    run = function(c)
      c:say "help"
      return c:resume()
    end,
  },

  cancel = {
    match = {
      en = { "cancel", "start over", "never mind", "restart" },
      ja = { "キャンセル", "最初から", "やめる", "やり直し" },
    },
    run = function(c)
      c.cart:clear()
      c:say "cancelled"
      return c:restart()
    end,
  },

  cart = {
    match = {
      en = { "my cart", "my order", "what did i order", "show cart" },
      ja = { "カート", "注文内容" },
    },
    run = function(c)
      if c.cart:is_empty() then
        c:say "cart_empty"
      else
        c:say("cart", { lines = cart_lines(c), total = c:price(c.cart:total()) })
      end
      return c:resume()
    end,
  },
}
