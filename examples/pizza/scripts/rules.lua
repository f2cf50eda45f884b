-- scripts/rules.lua: what Luigi suggests, and why. Each rule scores a
-- product for this conversation; the reason names a template in
-- scripts/tone.lua, so Luigi words it in the shopper's language.
--   after a pizza:   c:recommend { tag = "addon" }  (drinks and desserts)
--   at the menu:     c:recommend { tag = "pizza" }  (Luigi's tip)
local luigi = require "lib.luigi"

return {
  limit = 2,
  rules = {
    {
      name = "something cold for a spicy pizza",
      score = function(p, c)
        if p:has_tag "pairs_spicy" and c.cart:has_tag "spicy" and not c.cart:has_tag "drink" then
          return 5, "reason_spicy"
        end
      end,
    },
    {
      name = "a dessert to share once there are two pizzas",
      score = function(p, c)
        if p:has_tag "dessert" and luigi.pizzas_in(c) >= 2 and not c.cart:has_tag "dessert" then
          return 5, "reason_two_pizzas"
        end
      end,
    },
    {
      name = "vegetarian pizzas for a vegetarian",
      score = function(p, c)
        if c.profile.vegetarian and p:has_tag "pizza" and p:has_tag "vegetarian" then return 3, "reason_veggie" end
      end,
    },
    {
      name = "never meat for a vegetarian",
      score = function(p, c)
        if c.profile.vegetarian and p:has_tag "meat" then return -10 end
      end,
    },
    {
      name = "the house favourite",
      score = function(p)
        if p:has_tag "pizza" and p:has_tag "bestseller" then return 1, "reason_bestseller" end
      end,
    },
  },
}
