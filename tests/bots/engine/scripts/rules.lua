return {
  limit = 2,
  rules = {
    { name = "with coffee", score = function(p, c)
        if c.cart:has_tag "coffee" and p:has_tag "with_coffee" then return 5, "reason_coffee" end
      end },
    { name = "sweet tooth", score = function(p, c)
        if c.profile.likes == "sweet" and p:has_tag "sweet" then return 3, "just because" end
      end },
  },
}
