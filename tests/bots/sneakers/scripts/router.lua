-- What the shopper can ask at any step.
return {
  help = {
    match = { en = { "help" }, es = { "ayuda" } },
    run = function(c)
      c:say "help"
      return c:resume()
    end,
  },
  order_status = {
    match = { en = { "where is my order" }, es = { "mi pedido" } },
    run = function(c)
      local order = c:orders(1)[1]
      if order then c:say("your_order", { order = order.id, status = order.state }) else c:say "no_orders" end
      return c:resume()
    end,
  },
}
