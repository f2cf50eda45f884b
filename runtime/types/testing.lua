---@meta parley.testing
-- require "parley.testing": the conversation helper for busted specs run by
-- `parley test` (docs/testing.md#specs). Each conversation is a shopper
-- talking to the bot through the real pipeline: engine, sandbox and an
-- in-memory store.
--
--   local testing = require "parley.testing"
--   local chat = testing.conversation { locale = "ja" }
--   chat:send "hi"
--   chat:tap "Latte"
--   assert.equal("drink.size", chat:step())

---@class parley.testing
local testing = {}

---A new shopper: a fresh user id unless one is given, so specs do not share sessions.
---@param opts? { user?: string, channel?: string, locale?: string, info?: table }
---@return parley.testing.Chat
function testing.conversation(opts) end

---The bot's name, and its load error (nil when its scripts loaded).
---@return string name
---@return string|nil err
function testing.bot() end

---The warnings and errors logged since the last call (a failed turn logs
---"file:line: message"), oldest first.
---@return string[]
function testing.errors() end

---Moves parley's clock forward and lets what fell due happen: jobs fire and their
---turns run. No spec ever sleeps.
---@param seconds number
function testing.advance(seconds) end

---The merchant's orders API: a fulfilment status for an order (the shopper is told).
---@param id integer
---@param status string "shipped", "delivered" ...
---@param tracking_url? string
---@return integer status 200, 404 ...
function testing.update_order(id, status, tracking_url) end

---Sets what is left of a stocked product ("latte") or option choice ("latte/milk=oat"),
---as if other shoppers had bought the rest.
---@param key string
---@param n integer
function testing.stock(key, n) end

---A stored order by number.
---@param id integer
---@return parley.Order|nil
function testing.order(id) end

---The `it`s of the block that calls it (a describe, or a spec file at its top) share one
---bot: it starts afresh once, before the block's setup, and keeps what each `it` leaves.
---Every other `it` starts on a fresh bot (docs/testing.md#every-it-starts-on-a-fresh-bot).
function testing.share() end

---The bot starts afresh now, as at the start of an `it`: empty store, stock, clock, errors.
---Every conversation forgets its last replies, error, confirmed order and pushed() mark.
function testing.reset() end

---One shopper in a spec.
---What c:understand makes of the text in a locale (the bot's first when not given),
---with skus where a flow gets products; the parser's answer (no language model).
---@param text string
---@param locale? string
---@return table
function testing.understand(text, locale) end

---@class parley.testing.Chat
---@field user string the shopper's id
---@field channel string the channel's name ("rest" unless given)
---@field locale? string the locale its messages carry
---@field info? table what the platform tells of the shopper (msg.channel's facts)
---@field replies parley.Reply[] the last turn's replies
---@field failed? string the last turn's error ("file:line: message") when it failed
local Chat = {}

---The web chat's panel opened (webchat.greet_on_open): a conversation that has not begun
---starts with the bot's greeting; any other is left as it is. Returns the replies;
---raises at the spec's line when its turn failed (chat:fails{open = true} expects that).
---@return parley.Reply[]
function Chat:open() end

---Sends a message whose turn is meant to fail: text, {payload = ...}, {tap = ...} or
---{open = true} (the panel's opening, as chat:open()).
---Returns the turn's error ("file:line: message"); raises when the turn did not fail.
---@param what string|{payload?: string, tap?: string|integer, open?: true}
---@return string err
function Chat:fails(what) end

---Sends text as the shopper; returns this turn's replies.
---@param text string
---@return parley.Reply[]
function Chat:send(text) end

---Sends a payload directly, as a tapped button would.
---@param payload string
---@return parley.Reply[]
function Chat:press(payload) end

---Sends a message of these fields (text, payload) as the shopper.
---@param fields { text?: string, payload?: string }
---@return parley.Reply[]
function Chat:post(fields) end

---Taps a choice of the last turn: by number, by exact title or payload, or by the start
---of its title ("Latte" for "Latte · €3.80"). Raises, listing what was offered, when
---there is none.
---@param which integer|string
---@return parley.Reply[]
function Chat:tap(which) end

---Every choice offered in the last turn, in order.
---@return parley.QuickReply[]
function Chat:offered() end

---The titles of the choices of the last turn.
---@return string[]
function Chat:choices() end

---The product cards of the last turn.
---@return parley.Card[]
function Chat:cards() end

---The texts of the last turn's replies.
---@return string[]
function Chat:texts() end

---The texts of the last turn joined by newlines.
---@return string
function Chat:text() end

---Whether some text of the last turn contains fragment (plain text, no pattern).
---@param fragment string
---@return boolean
function Chat:says(fragment) end

---The stored session (as committed), or nil.
---@return table|nil
function Chat:session() end

---"flow.step" where the conversation waits, or nil when no flow is open.
---@return string|nil
function Chat:step() end

---The slots of the innermost flow.
---@return table<string, any>
function Chat:slots() end

---The cart as stored: {currency =, code =, lines = {{sku, qty, options, unit_price}}}.
---@return { currency?: string, code?: string, lines: table[] }
function Chat:cart() end

---The shopper's latest order, or nil.
---@return parley.Order|nil
function Chat:last_order() end

---Confirms the latest order (or order id) through parley's real confirmation path;
---amount and currency default to the order's. Afterwards chat:pushed() holds what the
---shopper was told.
---@param status "paid"|"failed"|"expired"|"refunded"
---@param id? integer
---@param amount? integer
---@param currency? string
---@return integer status
---@return any problems
function Chat:confirm(status, id, amount, currency) end

---chat:confirm("paid", id)
---@param id? integer
---@return integer status
---@return any problems
function Chat:pay(id) end

---chat:confirm("failed", id)
---@param id? integer
---@return integer status
---@return any problems
function Chat:decline(id) end

---Replies the bot sent on its own (after a payment, a job, an order update) since the
---last confirm, watch or advance, as a flat list.
---@return parley.Reply[]
function Chat:pushed() end

---The texts of chat:pushed() joined by newlines.
---@return string
function Chat:pushed_text() end

---Marks now as the start of chat:pushed() (call before testing.advance).
function Chat:watch() end

---What an agent does in the console: "claim", "reply" (fields.text), "handback"
---(fields.flow, fields.step) or "close". Returns what the shopper was told.
---@param action "claim"|"reply"|"handback"|"close"
---@param fields? { agent?: string, text?: string, flow?: string, step?: string }
---@return parley.Reply[]
function Chat:agent(action, fields) end

---The session's handoff ({state =, agent =, reason =}), or nil when the bot has the
---conversation.
---@return { state: string, agent?: string, reason?: string }|nil
function Chat:handoff() end

---The web chat widget's page event: the shopper looks at a page; the bot may greet
---first. Returns chat:pushed().
---@param page? { url?: string, title?: string }
---@return parley.Reply[]
function Chat:visit(page) end

---The session's pending jobs.
---@return { name: string, fire_at: integer, data: any }[]
function Chat:jobs() end

---Erases the shopper's session and transcript: the next message starts over.
function Chat:reset() end

---The shopper's transcript, oldest first: an "in" body is the message, an "out" body
---the list of replies.
---@return { direction: "in"|"out", body: any, at: integer }[]
function Chat:transcript() end

---The shopper's analytics events, oldest first (only those named name, if given).
---@param name? string
---@return { name: string, props: table, step?: string, conv: string, at: integer }[]
function Chat:events(name) end

---The names of the shopper's analytics events, oldest first.
---@return string[]
function Chat:event_names() end

return testing
