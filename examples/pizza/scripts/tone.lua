-- scripts/tone.lua: Luigi, who runs the oven. Warm, talkative, generous
-- with his Italian even in English ("amico", "perfetto", "mamma mia"), and
-- on first-name terms with everybody (tu, never Lei). Every sentence the
-- bot says lives here, per locale, often in a few variations.
local persona = { name = "Luigi", formality = "informal", emoji = true }

-- Emoji and pictographs, for channels that cannot show them.
local function without_emoji(s)
  local out = {}
  for _, cp in utf8.codes(s) do
    local emoji = (cp >= 0x1F000 and cp <= 0x1FAFF) or (cp >= 0x2600 and cp <= 0x27BF)
      or cp == 0xFE0F or cp == 0x200D
    if not emoji then out[#out + 1] = utf8.char(cp) end
  end
  return (table.concat(out):gsub(" +\n", "\n"):gsub("  +", " "):gsub("%s+$", ""))
end

return {
  persona = persona,

  templates = {
    en = {
      greet = {
        "Ciao! I'm {persona.name}, and this is my pizzeria 🍕 The oven is hot — what can I bake for you?",
        "Buonasera and welcome to Luigi's! I'm {persona.name} 🍕 So, what are we having today?",
        "Ciao, amico! {persona.name} here, flour on my hands and the oven at 450 degrees 🔥 What would you like?",
      },
      greet_again = { "Eccoti! Good to see you again.", "Ciao again, amico! The oven is still hot." },
      welcome_back = "Bentornato! Your order is still here: {count} item(s), {total}.",
      tip = { "My tip today: the {product} — {reason}", "If you ask me, try the {product}: {reason}" },
      ask_pizza = {
        "Which pizza would you like? Tap one, or just tell me — \"a large margherita\" works too.",
        "Here's what comes out of my oven today. Which one is yours?",
      },
      didnt_catch_pizza = "Scusa, I didn't catch which pizza. Pick one from the menu, or type its name.",
      no_pineapple = "Pineapple? Mamma mia… not in my oven, amico 🍍🚫 Pick any other pizza and I'll make it perfetta.",
      sold_out = { "Ah, mi dispiace — the {product} is sold out for today.", "The {product} is all gone today, sorry! Everybody wanted it." },
      ask_size = { "Perfetto, a {pizza}! What size?", "A {pizza}, bella scelta. Which size would you like?" },
      didnt_catch_size = "Which size for the {pizza}? Tap one of the sizes below.",
      ask_crust = { "And the crust for your {pizza} ({size})?", "How do you like the base of your {pizza} ({size})?" },
      didnt_catch_crust = "Which crust for the {pizza}? Classic, thin or gluten-free — tap one below.",
      added = { "One {pizza} ({size}, {crust}) — into the oven it goes! 🍕", "Bellissimo: a {pizza}, {size}, {crust} 🍕" },
      added_many = "{qty} × {pizza} ({size}, {crust}) — into the oven they go! 🍕",
      ask_extras = { "Any extra toppings on your {pizza}?", "Shall I put something extra on the {pizza}?" },
      ask_more_extras = { "Anything else on top?", "Another topping, or is that it?" },
      no_extras = "No extras",
      extras_done = "That's it",
      added_extra = { "{extra} — on it goes ✔", "{extra}? Certo!" },
      didnt_catch_extra = "Scusa, which topping? Tap one below, or \"that's it\".",
      already_extra = "The {extra} is already on it, amico.",
      pairing = "With that I'd have the {product}: {reason}",
      add_item = "Add {product}",
      no_thanks = "No thanks",
      no_problem = { "Va bene, no problem!", "Certo, as you like." },
      added_item = { "{product} — added 👍", "{product}, perfetto." },
      anything_else = { "So far that's {total}. What else can I get you?", "That makes {total} so far. Anything else?" },
      another_pizza = "Another pizza",
      something_to_drink = "Something to drink",
      a_dessert = "A dessert",
      thats_all = "That's all",
      didnt_catch = "Scusa, I didn't get that. Could you pick one of the options?",
      ask_drink = "What would you like to drink?",
      ask_dessert = "Something sweet to finish? Everything is made here.",
      nothing_for_now = "Nothing for now",
      didnt_catch_side = "Scusa, I didn't catch that. Tap one below, or \"nothing for now\".",
      ask_delivery = "Shall we bring it to you, or will you pick it up? Delivery is {fee}, free from {free_from}.",
      delivery_choice = "Delivery · {fee}",
      pickup_choice = "I'll pick it up",
      didnt_catch_delivery = "Delivery or pickup? Tap one of the two.",
      ask_address = "Where should we bring it? Street, number and city, per favore.",
      didnt_catch_address = "I need a street and a number to find you — could you type the address?",
      delivery_fee = "Delivery is {fee}; orders from {free_from} travel free.",
      free_delivery = "Over {free_from}, so delivery is on the house! 🛵",
      eta_delivery = "We'll bring it to {address} in about 40 minutes 🛵",
      eta_pickup = "It'll be ready for pickup in about 20 minutes at Via Garibaldi 7.",
      summary_line = "{qty} × {title}{options} — {price}",
      summary = "Here's your order:\n{lines}\nTotal: {total}\n{when}\nGrazie mille!",
      cart = "Your order so far:\n{lines}\nTotal: {total}.",
      cart_empty = "Your order is still empty — let's fix that!",
      help = "I'm {persona.name} and I take your pizza order: choose a pizza, its size and crust and any extra toppings, then a drink or a dessert if you like, and whether we deliver or you pick up. You can type things like \"a large margherita\". Say \"my order\" to see it, \"cancel\" to start over, \"I'm vegetarian\" and I'll keep the meat away, or \"italiano\" for Italian.",
      cancelled = "Nessun problema — I've cleared your order. Let's start again.",
      veggie_noted = "Noted — no meat for you, amico 🌿",
      language_set = "Of course, let's speak English!",
      handoff = "Un momento! I'm calling someone from the pizzeria for you.",
      agent_joined = "{agent} from Luigi's is here.",
      closed = "Grazie! Come back when you're hungry 🍕",
      reason_spicy = "it cools the chilli down beautifully.",
      reason_two_pizzas = "with two pizzas on the table, save room for something sweet.",
      reason_veggie = "all flavour, no meat — made for you.",
      reason_bestseller = "it's what everybody orders here.",
      fallback = {
        "Mamma mia, something went wrong in my kitchen. Could you say that again?",
        "Scusa, the oven hiccuped. One more time?",
      },
    },

    it = {
      greet = {
        "Ciao! Sono {persona.name} e questa è la mia pizzeria 🍕 Il forno è caldo: cosa ti preparo?",
        "Benvenuto da Luigi's! Sono {persona.name} 🍕 Allora, cosa mangiamo oggi?",
        "Ciao, amico! Qui {persona.name}, con le mani nella farina e il forno a 450 gradi 🔥 Cosa ti va?",
      },
      greet_again = { "Eccoti! Che piacere rivederti.", "Ciao di nuovo! Il forno è ancora caldo." },
      welcome_back = "Bentornato! Il tuo ordine ti aspetta: {count} articoli, {total}.",
      tip = { "Il mio consiglio di oggi: la {product}, {reason}", "Se chiedi a me, prova la {product}: {reason}" },
      ask_pizza = {
        "Quale pizza ti preparo? Tocca il nome, o scrivimelo: va bene anche \"una margherita grande\".",
        "Ecco cosa esce oggi dal mio forno. Quale scegli?",
      },
      didnt_catch_pizza = "Scusa, non ho capito quale pizza. Scegline una dal menu o scrivi il nome.",
      no_pineapple = "Ananas? Mamma mia… non nel mio forno, amico 🍍🚫 Scegli un'altra pizza e te la faccio perfetta.",
      sold_out = { "Mi dispiace, per oggi {product} non c'è più.", "Che peccato: per oggi {product} è finito tutto, scusa!" },
      ask_size = { "Perfetto, una {pizza}! Di che misura?", "Una {pizza}, bella scelta. Che misura la vuoi?" },
      didnt_catch_size = "Che misura per la {pizza}? Scegline una qui sotto.",
      ask_crust = { "E l'impasto per la tua {pizza} ({size})?", "Come preferisci la base della tua {pizza} ({size})?" },
      didnt_catch_crust = "Che impasto per la {pizza}? Classico, sottile o senza glutine: scegline uno qui sotto.",
      added = { "Una {pizza} ({size}, {crust}): in forno! 🍕", "Bellissimo: {pizza}, {size}, {crust} 🍕" },
      added_many = "{qty} × {pizza} ({size}, {crust}): tutte in forno! 🍕",
      ask_extras = { "Qualche ingrediente extra sulla tua {pizza}?", "Ci metto qualcosa in più sulla {pizza}?" },
      ask_more_extras = { "Altro da mettere sopra?", "Un altro ingrediente, o va bene così?" },
      no_extras = "Niente extra",
      extras_done = "Va bene così",
      added_extra = { "{extra}: fatto ✔", "{extra}? Certo!" },
      didnt_catch_extra = "Scusa, quale ingrediente? Scegline uno qui sotto, o \"va bene così\".",
      already_extra = "{extra} c'è già sopra, amico.",
      pairing = "Con questa ci sta benissimo {product}: {reason}",
      add_item = "Aggiungi {product}",
      no_thanks = "No, grazie",
      no_problem = { "Va bene, nessun problema!", "Certo, come vuoi." },
      added_item = { "Aggiungo {product} 👍", "{product}, perfetto." },
      anything_else = { "Per ora sono {total}. Cos'altro ti porto?", "Siamo a {total}. Qualcos'altro?" },
      another_pizza = "Un'altra pizza",
      something_to_drink = "Da bere",
      a_dessert = "Un dolce",
      thats_all = "Basta così",
      didnt_catch = "Scusa, non ho capito. Puoi scegliere una delle opzioni?",
      ask_drink = "Cosa ti porto da bere?",
      ask_dessert = "Qualcosa di dolce per finire? È tutto fatto in casa.",
      nothing_for_now = "Niente, grazie",
      didnt_catch_side = "Scusa, non ho capito. Scegli qui sotto, o \"niente, grazie\".",
      ask_delivery = "Te la portiamo a casa o passi a ritirarla? La consegna costa {fee}, gratis da {free_from}.",
      delivery_choice = "Consegna · {fee}",
      pickup_choice = "Passo a ritirare",
      didnt_catch_delivery = "Consegna o ritiro? Scegli una delle due.",
      ask_address = "Dove te la portiamo? Via, numero civico e città, per favore.",
      didnt_catch_address = "Mi servono via e numero civico per trovarti: puoi scrivere l'indirizzo?",
      delivery_fee = "La consegna costa {fee}; da {free_from} è gratis.",
      free_delivery = "Sopra i {free_from} la consegna la offre la casa! 🛵",
      eta_delivery = "Te la portiamo in {address} tra circa 40 minuti 🛵",
      eta_pickup = "Sarà pronta per il ritiro tra circa 20 minuti, in Via Garibaldi 7.",
      summary_line = "{qty} × {title}{options} — {price}",
      summary = "Ecco il tuo ordine:\n{lines}\nTotale: {total}\n{when}\nGrazie mille!",
      cart = "Il tuo ordine finora:\n{lines}\nTotale: {total}.",
      cart_empty = "Il tuo ordine è ancora vuoto: rimediamo subito!",
      help = "Sono {persona.name} e prendo il tuo ordine: scegli la pizza, la misura, l'impasto e gli ingredienti extra, poi da bere o un dolce se vuoi, e se te la portiamo o passi tu. Puoi scrivere anche \"una margherita grande\". Scrivi \"il mio ordine\" per vederlo, \"annulla\" per ricominciare, \"sono vegetariano\" e niente carne, o \"english\" per l'inglese.",
      cancelled = "Nessun problema: ho cancellato il tuo ordine. Ricominciamo.",
      veggie_noted = "Ricevuto: niente carne per te 🌿",
      language_set = "Certo, parliamo italiano!",
      handoff = "Un momento! Chiamo qualcuno della pizzeria per te.",
      agent_joined = "{agent} di Luigi's è qui.",
      closed = "Grazie! Torna quando hai fame 🍕",
      reason_spicy = "rinfresca il piccante che è una meraviglia.",
      reason_two_pizzas = "con due pizze in tavola, tieni un posticino per il dolce.",
      reason_veggie = "tutto gusto e niente carne, fatta apposta per te.",
      reason_bestseller = "è quella che ordinano tutti.",
      fallback = {
        "Mamma mia, qualcosa è andato storto in cucina. Puoi ripetere?",
        "Scusa, il forno ha fatto le bizze. Me lo ridici?",
      },
    },
  },

  -- Every outgoing text passes through here. Luigi signs the order he
  -- reads back, and on channels without pictures (SMS, voice) his emoji
  -- stay in the kitchen.
  style = function(text, info)
    if info.key == "summary" then text = text .. "\n— " .. persona.name .. " 🍕" end
    if info.channel == "sms" or info.channel == "voice" then text = without_emoji(text) end
    return text
  end,
}
