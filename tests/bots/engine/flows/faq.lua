-- Called by the router's faq intent; returning lets the interrupted step resume.
return {
  start = {
    ask = function(c) c:say "faq_question" end,
    answer = function(c, msg)
      c:say("faq_answer", { topic = msg.text })
      return c:done()
    end,
  },
}
