-- scripts/tone.lua: Bea, the barista. Every sentence the bot says lives
-- here, per locale, often in a few variations; flows only name the key.
return {
  persona = { name = "Bea", formality = "casual", emoji = true },

  templates = {
    en = {
      greet = {
        "Hi! I'm {persona.name}, your barista ☕ What can I get you today?",
        "Hello and welcome! {persona.name} here ☕ Ready for something good?",
        "Hey there! I'm {persona.name} ☕ Let's get you a drink.",
      },
      welcome_back = "Welcome back! You have {count} item(s) in your cart. Let's add a drink.",
      ask_drink = { "Which drink would you like?", "What are you in the mood for?" },
      didnt_catch_drink = "Sorry, I didn't catch which drink. Pick one below, or type its name.",
      ask_size = { "What size for your {drink}?", "Which size would you like your {drink} in?" },
      didnt_catch_size = "Which size for the {drink}? Tap one of the sizes below.",
      added = { "One {size} {drink}, coming up!", "Great choice: a {size} {drink} ✨" },
      pairing = "{product} would go nicely with that: {reason}",
      add_item = "Add {product}",
      no_thanks = "No thanks",
      no_problem = { "No problem!", "Sure thing." },
      added_food = "Added {product} to your order 🥐",
      anything_else = "That's {count} item(s) so far, {total}. Anything else?",
      another_drink = "Another drink",
      thats_all = "That's all",
      didnt_catch = "Sorry, I didn't get that. Could you pick one of the options?",
      summary_line = "{qty} × {title}{options} — {price}",
      summary = "Here's your order:\n{lines}\nTotal: {total}. Thank you! ☕",
      cart = "In your cart:\n{lines}\nTotal so far: {total}.",
      cart_empty = "Your cart is empty for now.",
      help = "I can take your coffee order: pick a drink and a size, and I'll suggest something to go with it. Say \"cancel\" to start over or \"my cart\" to see your order.",
      cancelled = "No worries, I've cleared your order.",
      reason_coffee = "a classic with coffee.",
      reason_dunk = "perfect for dunking in an espresso.",
      reason_tea = "lovely with a cup of tea.",
      reason_matcha = "double the matcha, double the joy.",
      reason_chocolate = "for the chocolate lover in you.",
      reason_bestseller = "one of our bestsellers.",
      fallback = {
        "Sorry, something went wrong on my side. Could you say that again?",
        "Oops, I spilled something. Could you repeat that?",
      },
    },

    ja = {
      greet = {
        "いらっしゃいませ！バリスタの{persona.name}です ☕ 今日は何になさいますか？",
        "こんにちは！{persona.name}です ☕ お飲み物をお選びください。",
      },
      welcome_back = "おかえりなさい！カートに{count}点入っています。お飲み物を追加しましょう。",
      ask_drink = { "どのお飲み物にしますか？", "お飲み物をお選びください。" },
      didnt_catch_drink = "すみません、お飲み物がわかりませんでした。下から選ぶか、名前を入力してください。",
      ask_size = "{drink}のサイズはいかがなさいますか？",
      didnt_catch_size = "{drink}のサイズを下からお選びください。",
      added = { "{drink}（{size}）をおひとつですね！", "{drink}（{size}）、承りました ✨" },
      pairing = "{product}はいかがですか？{reason}",
      add_item = "{product}を追加",
      no_thanks = "いいえ、結構です",
      no_problem = "かしこまりました。",
      added_food = "{product}をご注文に追加しました 🥐",
      anything_else = "ただいま{count}点、{total}です。ほかにご注文はありますか？",
      another_drink = "もう一杯",
      thats_all = "以上です",
      didnt_catch = "すみません、よくわかりませんでした。選択肢から選んでください。",
      summary_line = "{title}{options} × {qty} — {price}",
      summary = "ご注文内容：\n{lines}\n合計：{total}。ありがとうございます！☕",
      cart = "カートの中身：\n{lines}\n現在の合計：{total}。",
      cart_empty = "カートはまだ空です。",
      help = "コーヒーのご注文を承ります。お飲み物とサイズを選ぶと、合うお菓子もご提案します。「キャンセル」で最初から、「カート」でご注文内容を確認できます。",
      cancelled = "ご注文を取り消しました。",
      reason_coffee = "コーヒーと相性抜群です。",
      reason_dunk = "エスプレッソに浸すのがおすすめです。",
      reason_tea = "お茶によく合います。",
      reason_matcha = "抹茶好きにはたまりません。",
      reason_chocolate = "チョコレート好きの方に。",
      reason_bestseller = "当店の人気商品です。",
      fallback = "すみません、うまくいきませんでした。もう一度お願いできますか？",
    },
  },

  -- Every outgoing text passes through here: Bea never shouts.
  style = function(text, info)
    if not text:find("!!", 1, true) then return text end
    return (text:gsub("!!+", "!"))
  end,
}
