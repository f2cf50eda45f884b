-- scripts/router.lua: the fixture's intents. Their names, phrases and
-- examples are what the language model's schema and prompt list.
return {
  order_status = {
    match = { en = { "order status" } },
    examples = { en = { "where is my order", "has my order shipped" } },
    run = function(c)
      c:say "status"
      return c:resume()
    end,
  },
  opening_hours = {
    match = { en = { "opening hours" } },
    examples = { en = { "when are you open" } },
    run = function(c)
      c:say_text("We open at eight.")
      return c:resume()
    end,
  },
}
