-- Not loaded (the loader reads flows/*.lua only), so not checked.
return {
  start = function(c)
    c:say "no_such_template"
    return "nowhere"
  end,
}
