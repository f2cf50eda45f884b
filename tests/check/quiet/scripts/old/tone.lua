-- Not loaded (the loader reads scripts/*.lua only), so not checked.
return { templates = { en = { hello = "{nobody}" } } }
