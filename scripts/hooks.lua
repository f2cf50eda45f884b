-- scripts/hooks.lua: what the shop does when money moves. The flow tells
-- the shopper; these are for the shop's own systems (a receipt, the
-- kitchen's order screen). They run before the flow hears the news.
local log = require "log"

return {
  on_paid = function(c, order)
    log.info(string.format("order %d paid: %d %s for %s (%d line(s))", order.id, order.total,
      order.currency, c.user, #order.lines))
  end,

  on_failed = function(c, order)
    log.info(string.format("order %d: payment failed", order.id))
  end,

  on_refunded = function(c, order)
    log.info(string.format("order %d refunded", order.id))
  end,
}
