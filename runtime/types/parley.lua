---@meta _
-- parley's Lua API for editors: the conversation `c` that every step,
-- intent, rule and hook receives, the message, the cart, the catalog and its
-- products, orders and the transitions a step returns. LuaLS
-- (lua-language-server) reads these files through .luarc.json
-- ("workspace.library"); parley itself never loads them. The reference is
-- docs/lua-api.md; tests/bots/types/spec checks these names against the
-- running runtime both ways.

-- The conversation ------------------------------------------------------------------

---The conversation of one turn: everything a bot does goes through it. Misuse (a
---wrong argument, an unknown template) raises at your line; the shopper gets the
---fallback and the log gets file:line.
---@class parley.Conversation
---@field msg parley.Message the message this turn answers
---@field slots table<string, any> the current flow's variables, kept in the session (JSON values only)
---@field profile table<string, any> the shopper's profile, kept across flows (JSON values only)
---@field cart parley.Cart the shopper's cart
---@field catalog parley.Catalog the catalog in the shopper's locale
---@field result any what the last finished sub-flow gave to `c:done` (set after a `c:call` returns)
---@field locale string the shopper's locale ("en", "ja" ...)
---@field user string the shopper's id on the channel
---@field channel parley.Channel the channel the message came from (`c.channel.name`)
---@field persona parley.Persona the tone's persona
local Conversation = {}

---Sends the template `key`, worded by the tone in the shopper's locale.
---```lua
---c:say("ask_size", { drink = p.title }, { choices = { "Small", "Large" } })
---```
---@param key string a template of scripts/tone.lua
---@param vars? table<string, any> the template's {placeholders}
---@param opts? parley.SayOptions choices, cards, a link or an image on this reply
---@return parley.Reply reply the reply, to add to
function Conversation:say(key, vars, opts) end

---Sends text as it is (still through the style hook). Prefer `c:say`: the tone decides the words.
---@param text string
---@param opts? parley.SayOptions
---@return parley.Reply
function Conversation:say_text(text, opts) end

---A template's text in the shopper's locale, for choice titles and composed messages.
---@param key string
---@param vars? table<string, any>
---@return string
function Conversation:t(key, vars) end

---Quick replies on the last reply. A shopper can tap one, type its title or its number.
---@param list (parley.QuickReply|string)[]
---@return parley.Reply
function Conversation:choices(list) end

---Product cards (a carousel where the channel has one) on the last reply; items are
---products or recommendations.
---@param products (parley.Product|parley.Recommendation)[]
---@param opts? { payload?: fun(p: parley.Product): string, subtitle?: fun(p: parley.Product): string }
---@return parley.Reply
function Conversation:cards(products, opts) end

---Choices "Title · €3.80" with the sku as payload.
---@param products (parley.Product|parley.Recommendation)[]
---@return parley.QuickReply[]
function Conversation:product_choices(products) end

---A price as the shopper reads it: "€3.80", "3,80 €", "¥450" by locale and currency.
---@param amount integer|parley.Product minor units (380 is €3.80), or a product
---@param currency? string ISO 4217 code, when amount is a number
---@return string
function Conversation:price(amount, currency) end

---Products ranked for this shopper by scripts/rules.lua; reasons that name a template
---are worded by the tone.
---@param opts? { tag?: string, limit?: integer, include_cart?: boolean }
---@return parley.Recommendation[]
function Conversation:recommend(opts) end

---A link on the last reply (a payment link: a button where the channel has one).
---@param title string
---@param url string
---@return parley.Reply
function Conversation:link(title, url) end

---An image on the last reply.
---@param url string
---@return parley.Reply
function Conversation:image(url) end

---Applies the persona (emoji) and the tone's style hook to a text, as every outgoing
---text gets them.
---@param text string
---@param kind? parley.TextKind what the text is (default "text")
---@param key? string the template it came from
---@return string
function Conversation:styled(text, kind, key) end

---Switches the shopper's language (one of the bot's locales); it outlasts the locale
---the channel reports.
---@param locale string
function Conversation:set_locale(locale) end

---What the shopper's words say in the bot's own terms (docs/understanding.md): the
---router's intent, the products named with quantities and options, yes/no, a choice
---number, a discount code. Deterministic; a bot with a language model configured asks it
---only when the parser is not confident, and validates its answer against the catalog.
---Asked again about the same words in the same turn, it gives the same table.
---@param text? string the words (the current message's text when not given)
---@return parley.Understood
function Conversation:understand(text) end

---@class parley.UnderstoodItem
---@field product parley.Product
---@field sku string
---@field qty integer 1-99 ("a" and no number: 1)
---@field options table<string, string|string[]> option name -> choice value (a list for a `multiple` option)
---@field without? table<string, true|string[]> options said to be left out ("no milk")
---@field confidence number 0-1

---@class parley.Understood
---@field intent? string the router intent the words name (by phrase or by example)
---@field items parley.UnderstoodItem[] the products named, in the order written
---@field without? {product: parley.Product, sku: string}[] products said to be left out ("no mushrooms")
---@field options? table<string, string> choices named with no product ("large", to the step that asks the size)
---@field without_options? {name: string, value?: string}[] options left out with no product named
---@field tags? string[] tags named that fit several products ("coffee")
---@field yes? boolean a yes or a no, said first
---@field number? integer a choice number: "2", "the second one"
---@field code? string one of the bot's discount codes, as bot.json writes it
---@field rest string the folded words nothing understood ("" when all were)
---@field confidence table<string, number> per part found (intent, items, options, yes, number, code), 0-1
---@field confident boolean something was understood and no part is under 0.7
---@field source "parser"|"llm"

---Records an event of the bot's own for its analytics, committed with the turn.
---@param name string
---@param props? table<string, any>
function Conversation:track(name, props) end

---Turns the cart into an order and asks the payment provider for a hosted payment link;
---the turn waits without blocking other shoppers. The provider's answer comes back to
---the step the flow waits at as `msg.payment`.
---@return parley.Order|nil order
---@return "empty_cart"|"out_of_stock"|"discount_used"|"provider_unavailable"|nil why
---@return parley.Shortage|nil short what ran out, with "out_of_stock"
function Conversation:checkout() end

---What c:checkout(), cart:add and cart:set_qty name when stock is short (docs/commerce.md).
---@class parley.Shortage
---@field sku string the product
---@field title string its title in the shopper's locale
---@field option? string the option whose choice ran short ("colour"); nil when the product itself did
---@field value? string that choice's value ("red")
---@field choice_title? string that choice's title in the shopper's locale ("Red")
---@field wanted integer the units all the cart's lines want of it (for cart:add and set_qty: with the change asked for)
---@field available integer the units left
---@field lines integer[] the indexes of the cart lines that draw on it, in order

---The shopper's orders on this channel, newest first.
---@param n? integer at most this many (default 10)
---@return parley.Order[]
function Conversation:orders(n) end

---One of the shopper's orders by number, or nil.
---@param id integer
---@return parley.Order|nil
function Conversation:order(id) end

---Asks for the event `name` later: scripts/jobs.lua's function of that name runs for
---this session then. Scheduling a name again replaces it.
---@param name string
---@param when { after?: number, at?: number } seconds from now, or epoch seconds
---@param data? any JSON values given to the job
function Conversation:schedule(name, when, data) end

---Cancels the pending job of that name.
---@param name string
function Conversation:cancel(name) end

---`return c:call("drink", args, "pairing")`: runs a sub-flow; when it finishes with
---`c:done(value)`, this flow continues at `resume_step` with `c.result = value`.
---@param flow string a flow of flows/
---@param args? table<string, any> the sub-flow's first slots
---@param resume_step? string where this flow continues (default: the current step)
---@return parley.Transition
function Conversation:call(flow, args, resume_step) end

---`return c:done(value)`: finishes the current flow, giving value to the caller.
---@param value? any
---@return parley.Transition
function Conversation:done(value) end

---`return c:resume()` from a router intent: asks the interrupted step again.
---@return parley.Transition
function Conversation:resume() end

---`return c:restart()`: empties the dialog stack and starts the main flow.
---@return parley.Transition
function Conversation:restart() end

---`return c:handoff "reason"`: a person takes over; the bot stops answering until an
---agent hands the conversation back or closes it.
---@param reason? string
---@return parley.Transition
function Conversation:handoff(reason) end

---What a step returns: the name of the next step, a transition, or nil.
---@class parley.Transition
---@field kind "call"|"done"|"resume"|"restart"|"handoff"

---@alias parley.TextKind
---| "text" # a reply's text
---| "choice" # a choice's or a link's title
---| "card" # a product card's title or subtitle

---@class parley.SayOptions
---@field choices? (parley.QuickReply|string)[] quick replies
---@field cards? (parley.Product|parley.Recommendation)[] product cards
---@field link? { title: string, url: string } a link (a button where the channel has one)
---@field image? string an image URL

---A quick reply: a button or a numbered choice.
---@class parley.QuickReply
---@field title string what the shopper sees
---@field payload? string what the bot gets as msg.payload when tapped

---One reply of the turn, channel-neutral; each adapter renders what its platform can.
---@class parley.Reply
---@field text? string
---@field choices? parley.QuickReply[]
---@field cards? parley.Card[]
---@field link? { title: string, url: string }
---@field image? string

---@class parley.Card
---@field sku string
---@field title string
---@field subtitle? string
---@field image? string
---@field price { amount: integer, currency: string }
---@field payload string

-- The message ---------------------------------------------------------------------

---The shopper's message (also `c.msg`).
---@class parley.Message
---@field text? string what the shopper typed
---@field payload? string the payload of a tapped (or typed) choice
---@field choice? parley.QuickReply the choice, when the shopper typed its title or number (payload is set too)
---@field locale? string the locale the channel reports
---@field user string the shopper's id on the channel
---@field channel parley.Channel
---@field payment? parley.Payment at the step waiting for a payment: the provider's answer
---@field event? table an event turn's event (a payment, a job, an agent's action, a page visit), as the runtime got it

---@class parley.Channel
---@field name string "rest", "webchat", "whatsapp", "console" ...
---@field push boolean whether parley can send this shopper something unasked
---@field platform? string what the platform tells of the shopper:
---@field display_name? string the shopper's name on the platform
---@field phone? string

---@class parley.Payment
---@field status "paid"|"failed"|"expired"|"refunded"
---@field order parley.Order

---@class parley.Persona
---@field name? string
---@field formality? string
---@field emoji? boolean false removes emoji from every outgoing text
---@field [string] any

-- The cart ------------------------------------------------------------------------

---The shopper's cart. Prices are integer minor units; one currency per cart.
---@class parley.Cart
local Cart = {}

---Adds a product (or merges with an equal line); checks the live stock.
---```lua
---local line, why, short = c.cart:add("latte", { qty = 2, options = { size = "large" } })
---```
---@param product parley.Product|string a product or its sku
---@param opts? { qty?: integer, options?: table<string, string|string[]> }
---@return parley.CartLine|nil line
---@return "out_of_stock"|nil why
---@return parley.Shortage|nil short what is short, named as c:checkout() names it
function Cart:add(product, opts) end

---Removes a line by number or sku.
---@param which integer|string
---@return boolean removed
function Cart:remove(which) end

---Sets a line's quantity (0 removes it).
---@param which integer|string a line number or sku
---@param n integer
---@return boolean|nil ok true; false when there is no such line
---@return "out_of_stock"|nil why
---@return parley.Shortage|nil short what is short, as cart:add names it
function Cart:set_qty(which, n) end

---Empties the cart.
function Cart:clear() end

---@return boolean
function Cart:is_empty() end

---The units in the cart.
---@return integer
function Cart:count() end

---@param sku string
---@return boolean
function Cart:has(sku) end

---Whether a product in the cart has the tag.
---@param tag string
---@return boolean
function Cart:has_tag(tag) end

---@return parley.CartLine[]
function Cart:lines() end

---The indexes of the lines of that product (and, given option and value, that hold that
---choice), in order: what c:checkout()'s shortage names, for a flow to take out.
---@param sku string
---@param option? string
---@param value? string
---@return integer[]
function Cart:lines_with(sku, option, value) end

---The amount after any discount, and the currency.
---@return integer amount
---@return string|nil currency
function Cart:total() end

---The amount before the discount, and the currency.
---@return integer amount
---@return string|nil currency
function Cart:subtotal() end

---@return parley.Totals
function Cart:totals() end

---Applies a discount code of bot.json "discounts".
---@param code string
---@return true|nil ok
---@return "unknown"|"expired"|"minimum"|"currency"|"used"|nil why
function Cart:apply_code(code) end

---Removes the discount code.
function Cart:remove_code() end

---Why a code cannot apply to this cart now, or nil when it can.
---@param code string
---@return "unknown"|"expired"|"minimum"|"currency"|nil
function Cart:code_problem(code) end

---Whether this shopper already used a once-per-shopper code.
---@param code string
---@return boolean
function Cart:code_used(code) end

---@class parley.CartLine
---@field index integer
---@field sku string
---@field title string
---@field options table<string, string|string[]>
---@field option_titles string[] every chosen choice's title
---@field qty integer
---@field unit_price integer minor units, options included
---@field total integer
---@field currency string

---@class parley.Totals
---@field subtotal integer
---@field discount integer
---@field total integer
---@field currency string|nil
---@field code string|nil

-- The catalog -----------------------------------------------------------------------

---The bot's products in the shopper's locale (`c.catalog`). Sold-out products are left
---out unless `all` is asked for.
---@class parley.Catalog
---@field locale string
local Catalog = {}

---The product, or nil (sold out or not).
---@param sku string
---@return parley.Product|nil
function Catalog:get(sku) end

---Products with the tag, in catalog order.
---@param tag string
---@param opts? { all?: boolean }
---@return parley.Product[]
function Catalog:by_tag(tag, opts) end

---Every product, in catalog order.
---@param opts? { tag?: string, all?: boolean }
---@return parley.Product[]
function Catalog:all(opts) end

---Products the shopper's words match, best first (case-, accent- and width-insensitive,
---in every language of the bot).
---@param words string
---@param opts? { tag?: string, limit?: integer, all?: boolean, named?: boolean }
---@return parley.Product[]
function Catalog:search(words, opts) end

---The product the words name by its title, or nil.
---@param words string
---@param tag? string
---@param opts? { all?: boolean }
---@return parley.Product|nil
function Catalog:find(words, tag, opts) end

---A product, read-only, its texts in the shopper's locale; stock is read live.
---@class parley.Product
---@field sku string
---@field title string
---@field description? string
---@field price integer minor units (380 is €3.80)
---@field currency string ISO 4217
---@field image? string a URL
---@field tags string[]
---@field aliases string[] the merchant's other names for it in this locale: the locale's own, its language's and every locale's ("*"), each once
---@field stock? integer the units left now; nil: unlimited
---@field in_stock boolean whether any are left
---@field options? table<string, parley.Option> the product's options by name
local Product = {}

---@param tag string
---@return boolean
function Product:has_tag(tag) end

---The choice of option `name` whose value is `value`, or nil.
---@param name string
---@param value string
---@return parley.OptionChoice|nil
function Product:option(name, value) end

---An option: the list of its choices (`ipairs(p.options.size)`), with its flags.
---@class parley.Option: parley.OptionChoice[]
---@field multiple boolean the shopper may take several
---@field max? integer at most this many, when multiple
---@field required boolean every cart line of the product must say this option

---One choice of an option.
---@class parley.OptionChoice
---@field value string what flows and orders use
---@field title string in the shopper's locale (the value when the catalog gives none)
---@field aliases string[] the merchant's other names for the choice in this locale (as a product's aliases)
---@field price integer the price change in minor units (may be negative)
---@field stock? integer units left now; nil: unlimited
---@field in_stock boolean

---@class parley.Recommendation
---@field product parley.Product
---@field score number
---@field reason? string the rule's reason, worded by the tone when it names a template
---@field rule? string the name of the rule that gave most

-- Orders ------------------------------------------------------------------------------

---@class parley.Order
---@field id integer
---@field state "pending"|"paid"|"failed"|"expired"|"refunded"
---@field fulfilment? string the merchant's status ("shipped" ...)
---@field tracking_url? string
---@field currency string
---@field subtotal integer
---@field discount integer
---@field total integer
---@field discount_code? string
---@field lines parley.OrderLine[]
---@field payment_url? string the hosted payment page
---@field provider? string
---@field created_at integer
---@field updated_at integer
---@field paid_at? integer
---@field [string] any

---@class parley.OrderLine
---@field sku string
---@field title string
---@field qty integer
---@field unit_price integer
---@field total integer
---@field options? table<string, string|string[]>
---@field option_titles? string[]
