-- A fixture of tests/e2e/test_check.py: the catalog's options.
return {
  start = function(c)
    c.cart:add("tee", { options = { size = "xl", colour = "red" } }) -- MISTAKE: no size 'xl'
    c.cart:add("cap", { options = { color = "blue" } }) -- MISTAKE: no option 'color'
    local tee = c.catalog:get("tee")
    if tee:option("colour", "green") then c:say "greet" end -- MISTAKE: no colour 'green'
    for _, size in ipairs(tee.options.sizes) do c:say_text(size.title) end -- MISTAKE: no option 'sizes'
    return c:done()
  end,
}
