return {
  persona = { name = "Cassie", emoji = false },
  templates = {
    en = {
      welcome = "Type a command.",
      menu = "Menu:",
      fallback = "Something broke.",
    },
    ja = {
      welcome = "コマンドをどうぞ。",
      menu = "メニュー：",
      fallback = "問題が発生しました。",
    },
  },
}
