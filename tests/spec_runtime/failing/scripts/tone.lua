-- scripts/tone.lua
return {
  templates = {
    en = { hello = "Hello.", pick = "Pick one.", ok = "Fine.", fallback = "Something broke." },
  },
}
