-- scripts/tone.lua: the isolation fixture's few sentences.
return {
  persona = { name = "Iso" },
  templates = {
    en = {
      hello = "Hello.",
      added = "{count} in the cart.",
      pay = "Order {order}.",
      reminding = "I will remind you.",
      nudge = "A nudge.",
      paid = "Paid, thanks.",
      unpaid = "Not paid.",
      fallback = "Something broke.",
    },
  },
}
