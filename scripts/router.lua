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
      en = { "help", "what can you do", "how does this work" },
      ja = { "ヘルプ", "助けて", "使い方" },
    },
    -- free wordings, typos forgiven: "how dose this wrok"
    examples = {
      en = { "how do i order", "i need help", "i am confused", "what can i ask you" },
      ja = { "どうすればいいですか", "使い方を教えて" },
    },
    run = function(c)
      c:track("help_asked") -- the shop's figures count how often shoppers need help
      c:say "help"
      return c:resume()
    end,
  },

  cancel = {
    match = {
      en = { "cancel", "start over", "never mind", "restart" },
      ja = { "キャンセル", "最初から", "やめる", "やり直し" },
    },
    examples = {
      en = { "cancel my order", "forget it", "let's start again", "scrap that" },
      ja = { "注文を取り消して", "なしにして" },
    },
    run = function(c)
      c.cart:clear()
      c:say "cancelled"
      return c:restart()
    end,
  },

  order_status = {
    match = {
      en = { "where is my order", "order status", "my orders", "track my order" },
      ja = { "注文状況", "注文はどこ" },
    },
    examples = {
      en = { "where is my order", "has my order shipped", "when will my order be ready", "is my order ready",
             "status of my order" },
      ja = { "注文はどうなっていますか", "注文の状況を教えて", "まだですか" },
    },
    run = function(c)
      local order = c:orders(1)[1]
      if not order then
        c:say "no_orders"
      else
        c:say("your_order", {
          order = order.id, total = c:price(order.total, order.currency),
          status = c:t("state_" .. (order.fulfilment or order.state)),
        })
      end
      return c:resume()
    end,
  },

  human = {
    match = {
      en = { "talk to a person", "a human", "a person", "real person", "speak to someone", "agent", "staff" },
      ja = { "人と話したい", "スタッフ", "担当者" },
    },
    examples = {
      en = { "can i talk to someone", "i want to speak to a human", "connect me to a person", "customer service" },
      ja = { "スタッフと話したい", "人間と話したい" },
    },
    run = function(c) return c:handoff("asked for a person") end,
  },

  cart = {
    match = {
      en = { "my cart", "what's in my cart", "show cart", "basket" },
      ja = { "カート", "注文内容" },
    },
    examples = {
      en = { "what is in my cart", "show me my basket", "what have i ordered so far" },
      ja = { "カートを見せて", "何を注文しましたか" },
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
