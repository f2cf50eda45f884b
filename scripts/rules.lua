-- scripts/rules.lua: which pastry goes with what is in the cart. Each rule
-- scores a product for this conversation and says why (a tone template).
return {
  limit = 2,
  rules = {
    {
      name = "coffee and pastry",
      score = function(p, c)
        if c.cart:has_tag "coffee" and p:has_tag "pairs_coffee" then return 5, "reason_coffee" end
      end,
    },
    {
      name = "something to dunk in an espresso",
      score = function(p, c)
        if c.cart:has "espresso" and p:has_tag "pairs_espresso" then return 4, "reason_dunk" end
      end,
    },
    {
      name = "tea time",
      score = function(p, c)
        if c.cart:has_tag "tea" and p:has_tag "pairs_tea" then return 5, "reason_tea" end
      end,
    },
    {
      name = "matcha with matcha",
      score = function(p, c)
        if c.cart:has_tag "matcha" and p:has_tag "matcha" then return 3, "reason_matcha" end
      end,
    },
    {
      name = "chocolate lovers",
      score = function(p, c)
        if (c.cart:has_tag "chocolate" or c.profile.likes_chocolate) and p:has_tag "chocolate" then
          return 4, "reason_chocolate"
        end
      end,
    },
    {
      name = "bestsellers",
      score = function(p)
        if p:has_tag "bestseller" then return 1, "reason_bestseller" end
      end,
    },
  },
}
