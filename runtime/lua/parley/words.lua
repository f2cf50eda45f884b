-- parley.words: the small words c:understand knows in each language it is
-- built for (en, es, pt, fr, de, it, ja): numbers, ordinals, yes and no,
-- negation, and the words that join or pad a request. They are matched
-- exactly after folding (no typo tolerance: "there" must never be "three"),
-- and only the languages of a bot's own locales are used.
--
-- kinds: number (n; article = "a"/"un", which counts only before a
-- product; another = "another"), ordinal (n), counter (after a number:
-- "2つ", "3杯"), times ("x2"), ordsuffix ("2nd", "2番目"), yes, no,
-- neg_before ("no milk", "sin azúcar"), neg_after ("ミルクなし"), also
-- ("and": a new item may follow), with ("with": what follows goes with the
-- item before), filler ("please", "i'd like"), word (a common word, known so
-- that a catalog word is never read into it as a typo; it means nothing).
local words = {}

local function numbers(list)
  local out = {}
  for n, names in ipairs(list) do
    for name in names:gmatch("[^|]+") do out[#out + 1] = { name, "number", n } end
  end
  return out
end

local function kind(k, list)
  local out = {}
  for name in list:gmatch("[^|]+") do out[#out + 1] = { name, k } end
  return out
end

-- A yes that is another word too (Italian and Spanish "si": "si può", "si
-- tienes"): yes only alone or before words the bot knows.
local function lonely_yes(list)
  local out = kind("yes", list)
  for _, w in ipairs(out) do w.lonely = true end
  return out
end

local function ordinals(list)
  local out = {}
  for n, names in ipairs(list) do
    for name in names:gmatch("[^|]+") do out[#out + 1] = { name, "ordinal", n } end
  end
  return out
end

local function articles(list, n)
  local out = {}
  for name in list:gmatch("[^|]+") do out[#out + 1] = { name, "number", n or 1, article = true } end
  return out
end

local function another(list)
  local out = {}
  for name in list:gmatch("[^|]+") do out[#out + 1] = { name, "number", 1, another = true } end
  return out
end

local function join(...)
  local out = {}
  for _, list in ipairs { ... } do
    for _, w in ipairs(list) do out[#out + 1] = w end
  end
  return out
end

words.en = join(
  numbers { "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve|a dozen|dozen" },
  articles("a|an"), articles("a couple of|a couple|couple of|a pair of|a pair", 2), articles("half a dozen", 6),
  another("another|one more|another one"),
  ordinals { "first|the first one|first one", "second|the second one|second one", "third|third one",
    "fourth|fourth one", "fifth|fifth one", "sixth", "seventh", "eighth", "ninth", "tenth" },
  kind("ordsuffix", "st|nd|rd|th"), kind("times", "x|times"),
  kind("yes", "yes|yeah|yep|yup|yes please|sure|ok|okay|of course|correct|thats right|sounds good|go ahead|please do|absolutely"),
  kind("no", "no|nope|nah|no thanks|no thank you|not really|not now|no way|nothing|nothing else|none"),
  kind("neg_before", "no|without|hold the|minus|no more"),
  kind("also", "and|plus|also|and also|then|+|&"), kind("with", "with"),
  kind("filler", "slice|slices|cup|cups|piece|pieces|glass|glasses|bottle|bottles|portion|portions|box|boxes|bag|bags|mug|mugs"),
  kind("word", "there|these|those|where|when|what|which|while|would|could|should|about|order|ordered|think|thing|things|here|have|make|more|most|like|just|some|come|cost|costs|lots|not sure|im not sure|i dont know|dont know|no idea|number|option|choice"),
  kind("filler", "please|pls|plz|id like|i would like|i want|ill have|ill take|can i have|can i get|could i have|could i get|may i have|give me|get me|ill get|for me|thanks|thank you|the|some|of|just|one of|ones")
)

words.es = join(
  numbers { "uno|una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce|una docena de|una docena" },
  articles("un|una"), articles("un par de|un par", 2), articles("media docena de|media docena", 6),
  another("otro|otra|uno mas|una mas|otro mas|otra mas"),
  ordinals { "primero|primera|el primero|la primera", "segundo|segunda|el segundo|la segunda", "tercero|tercera|el tercero|la tercera",
    "cuarto|cuarta", "quinto|quinta" },
  kind("ordsuffix", "o|a|er"), kind("times", "x"),
  lonely_yes("si"), kind("yes", "claro|vale|de acuerdo|perfecto|por supuesto|dale|si por favor|claro que si|correcto|sale"),
  kind("no", "no|no gracias|para nada|nada mas|de ninguna manera"),
  kind("neg_before", "sin|no|nada de"),
  kind("also", "y|e|mas|tambien|y tambien|+|&"), kind("with", "con"),
  kind("filler", "por favor|porfa|quiero|quisiera|me da|me das|me pones|ponme|dame|me gustaria|para mi|gracias|el|la|los|las|de|unos|unas")
)

words.pt = join(
  numbers { "um|uma", "dois|duas", "tres", "quatro", "cinco", "seis", "sete", "oito", "nove", "dez", "onze", "doze|uma duzia de|uma duzia" },
  articles("um|uma"), articles("um par de|um par", 2), articles("meia duzia de|meia duzia", 6),
  another("outro|outra|mais um|mais uma"),
  ordinals { "primeiro|primeira|o primeiro|a primeira", "segundo|segunda|o segundo|a segunda", "terceiro|terceira",
    "quarto|quarta", "quinto|quinta" },
  kind("ordsuffix", "o|a"), kind("times", "x|vezes"),
  kind("yes", "sim|claro|pode ser|com certeza|beleza|ok|certo|isso|sim por favor|perfeito"),
  kind("no", "nao|nao obrigado|nao obrigada|de jeito nenhum"),
  kind("neg_before", "sem|nao|nada de"),
  kind("also", "e|mais|tambem|+|&"), kind("with", "com"),
  kind("filler", "por favor|quero|queria|gostaria|me da|me ve|pra mim|para mim|obrigado|obrigada|o|a|os|as|de|uns|umas")
)

words.fr = join(
  numbers { "un|une", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze|une douzaine de|une douzaine" },
  articles("un|une"), articles("une paire de|deux ou trois", 2), articles("une demi douzaine de", 6),
  another("un autre|une autre|encore un|encore une|un de plus|une de plus"),
  ordinals { "premier|premiere|le premier|la premiere", "deuxieme|second|seconde|le deuxieme|la deuxieme", "troisieme|le troisieme|la troisieme",
    "quatrieme", "cinquieme" },
  kind("ordsuffix", "er|re|e|eme"), kind("times", "x|fois"),
  kind("yes", "oui|ouais|d accord|bien sur|parfait|volontiers|ok|oui merci|oui s il vous plait|exactement|c est ca"),
  kind("no", "non|non merci|pas du tout|surtout pas"),
  kind("neg_before", "sans|pas de|non"),
  kind("also", "et|plus|aussi|et aussi|puis|+|&"), kind("with", "avec"),
  kind("filler", "s il vous plait|s il te plait|svp|stp|je voudrais|je veux|j aimerais|je prends|je prendrai|pour moi|donnez moi|merci|le|la|les|l|de|du|des")
)

words.de = join(
  numbers { "eins", "zwei", "drei", "vier", "funf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwolf|ein dutzend|dutzend" },
  articles("ein|eine|einen|einem|einer"), articles("ein paar|zwei oder drei", 2), articles("ein halbes dutzend", 6),
  another("noch ein|noch eine|noch einen|noch eins|ein weiteres|eine weitere|einen weiteren"),
  ordinals { "erste|ersten|erster|erstes|der erste|die erste|das erste", "zweite|zweiten|zweiter|zweites|der zweite|die zweite|das zweite",
    "dritte|dritten|dritter|drittes", "vierte|vierten", "funfte|funften" },
  kind("ordsuffix", "te|ten"), kind("times", "x|mal"),
  kind("yes", "ja|jawohl|gerne|gern|klar|na klar|genau|okay|ok|ja bitte|ja gerne|sicher|einverstanden|passt"),
  kind("no", "nein|nee|nein danke|lieber nicht|auf keinen fall|nicht"),
  kind("neg_before", "ohne|kein|keine|keinen|keinem|nicht"),
  kind("also", "und|plus|auch|und auch|dazu|+|&"), kind("with", "mit"),
  kind("filler", "bitte|ich hatte gern|ich hatte gerne|ich mochte|ich nehme|ich will|fur mich|geben sie mir|gib mir|danke|der|die|das|den|dem")
)

words.it = join(
  numbers { "uno|una", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci", "undici", "dodici|una dozzina di|una dozzina" },
  articles("un|uno|una"), articles("un paio di|un paio|una coppia di", 2), articles("mezza dozzina di|mezza dozzina", 6),
  another("un altro|un altra|un altro ancora|ancora uno|ancora una|uno in piu|una in piu"),
  ordinals { "primo|prima|il primo|la prima", "secondo|seconda|il secondo|la seconda", "terzo|terza|il terzo|la terza",
    "quarto|quarta", "quinto|quinta" },
  kind("ordsuffix", "o|a"), kind("times", "x"),
  lonely_yes("si"), kind("yes", "certo|va bene|perfetto|volentieri|ok|esatto|si grazie|si per favore|d accordo|certamente|perche no"),
  kind("no", "no|no grazie|per niente|assolutamente no|niente|nulla|niente altro|nient altro|basta|basta cosi|basta grazie"),
  kind("neg_before", "senza|no|niente"),
  kind("also", "e|ed|piu|anche|e anche|poi|+|&"), kind("with", "con"),
  kind("filler", "per favore|per piacere|vorrei|voglio|prendo|mi da|mi dai|mi porti|dammi|per me|grazie|il|lo|la|i|gli|le|l|di|del|della|dei"),
  -- common words a typo of a product name must never be ("cosa" is not
  -- "coca", "costa" not "cotta", "come" not "coke", "posso" not "rosso")
  kind("word", "come|cosa|costa|costano|quanto|quanti|posso|puoi|ordinare|ordinato|ho|hai|sono|questa|questo|quella|quello|tutto|anche|ancora|molto|bene|dove|quando|perche")
)

words.ja = join(
  numbers { "ひとつ|一つ|1つ|一個|一杯|一枚|一本|一人前", "ふたつ|二つ|二個|二杯|二枚|二本|二人前", "みっつ|三つ|三個|三杯|三枚|三本",
    "よっつ|四つ|四個|四杯|四枚", "いつつ|五つ|五個|五杯|五枚", "むっつ|六つ|六個|六杯", "ななつ|七つ|七個|七杯", "やっつ|八つ|八個|八杯",
    "ここのつ|九つ|九個|九杯", "十個|十杯" },
  another("もうひとつ|もう一つ|もう1つ|もう一杯|もう1杯|もう一個|もう1個|追加で"),
  ordinals { "最初の|一番目|1番目|一つ目|1つ目", "二番目|2番目|二つ目|2つ目", "三番目|3番目|三つ目|3つ目",
    "四番目|4番目", "五番目|5番目" },
  kind("counter", "つ|個|杯|枚|本|点|皿|人前|コ"), kind("ordsuffix", "番目|つ目|個目"), kind("times", "x"),
  kind("yes", "はい|ええ|うん|お願いします|おねがいします|お願い|いいよ|いいですね|そうです|オッケー|ok|もちろん|はいお願いします|それで|それでお願いします"),
  kind("no", "いいえ|いや|いらない|いりません|結構です|けっこうです|大丈夫です|だいじょうぶです|やめておきます|なしで"),
  kind("neg_before", "ノン"),
  kind("neg_after", "なし|抜き|抜きで|なしで|無し|ぬき"),
  kind("also", "と|とか|も|それと|あと|それから|に"),
  kind("word", "ええと|えーと|えっと|あの|あのー|うーん|えー"),
  kind("filler", "を|は|が|の|で|ください|下さい|くださる|ちょうだい|ほしい|欲しい|ほしいです|欲しいです|したい|頼みます|たのみます|もらえますか|いただけますか|お願いできますか|です|ます|でお願いします")
)

-- The languages built in.
words.languages = { "en", "es", "pt", "fr", "de", "it", "ja" }

return words
