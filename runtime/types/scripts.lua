---@meta _
-- The shapes of a bot's files, for editors (LuaLS): what a flow file,
-- scripts/tone.lua, rules.lua, router.lua, hooks.lua and jobs.lua return.
-- Annotate the returned table and every function in it knows its `c` and
-- `msg`:
--
--   ---@type parley.Flow
--   return { start = function(c) ... end }
--
-- The reference is docs/bots.md; parley checks these shapes when it loads a
-- bot and reports file:line.

-- Flows ------------------------------------------------------------------------------

---What a step returns: the next step's name (returning the current one asks
---again), a transition (`c:call`, `c:done`, `c:resume`, `c:restart`,
---`c:handoff`), or nil (from `answer`: stay and wait; from an action: the flow is
---done).
---@alias parley.Next string|parley.Transition|nil

---An action step: runs and says where to go next.
---@alias parley.Action fun(c: parley.Conversation, msg: parley.Message): parley.Next

---A question step: `ask` runs when the conversation arrives at the step, then
---parley waits for the shopper, whose message goes to `answer`.
---@class parley.Question
---@field ask? fun(c: parley.Conversation, msg: parley.Message): parley.Next
---@field answer fun(c: parley.Conversation, msg: parley.Message): parley.Next
---@field intents? boolean false: the router never interrupts this step (a step asking for a name that might be "Help")

---@alias parley.Step parley.Action|parley.Question

---A flow file (flows/NAME.lua) returns its named steps; `start` is where it begins.
---@class parley.Flow
---@field start parley.Step
---@field [string] parley.Step

-- The tone of voice: scripts/tone.lua ------------------------------------------------

---A template: a string with {placeholders}, or a list of variations (one is chosen
---per session and turn, so a conversation replays to the same words).
---@alias parley.Template string|string[]

---@class parley.Tone
---@field persona? parley.Persona who speaks; `{persona.name}` in a template
---@field templates table<string, table<string, parley.Template>> by locale, then key; the default locale needs `fallback`
---@field style? fun(text: string, info: parley.StyleInfo): string sees every outgoing text and returns it, changed or not

---What the style hook is told about the text it gets.
---@class parley.StyleInfo
---@field kind parley.TextKind a reply's text, a choice's title or a card's text
---@field locale string the shopper's locale
---@field channel string the channel's name ("webchat", "whatsapp" ...)
---@field key? string the template the text came from (nil for c:say_text, choices and cards)
---@field persona parley.Persona the tone's persona

-- Recommendation rules: scripts/rules.lua --------------------------------------------

---@class parley.Rule
---@field name? string
---@field score fun(p: parley.Product, c: parley.Conversation): number|nil, string|nil a score (nil counts 0) and a reason: a template key or plain text

---@class parley.Rules
---@field limit? integer how many c:recommend returns by default (3)
---@field rules parley.Rule[]

-- The router: scripts/router.lua -------------------------------------------------------

---An intent the shopper can use at any step. `run` returns `c:resume()`,
---`c:restart()`, `c:call(flow)` or nothing (stay silently).
---@class parley.Intent
---@field match? string[]|table<string, string[]> phrases, for every locale or by locale
---@field examples? string[]|table<string, string[]> sentences matched by likeness, typos forgiven
---@field threshold? number how alike the words must be to an example (0-1, default 0.8)
---@field run fun(c: parley.Conversation, msg: parley.Message): parley.Next

---@alias parley.Router table<string, parley.Intent>

-- Hooks and jobs: scripts/hooks.lua, scripts/jobs.lua ----------------------------------

---The shop's side of payments and orders, and page greetings (docs/commerce.md#hooks).
---@class parley.Hooks
---@field on_paid? fun(c: parley.Conversation, order: parley.Order)
---@field on_failed? fun(c: parley.Conversation, order: parley.Order)
---@field on_expired? fun(c: parley.Conversation, order: parley.Order)
---@field on_refunded? fun(c: parley.Conversation, order: parley.Order)
---@field on_order_status? fun(c: parley.Conversation, order: parley.Order, status: string, tracking_url: string|nil)
---@field on_page? fun(c: parley.Conversation, page: { url?: string, title?: string }) a shopper looks at a page of the shop (web chat): the hook decides whether the bot greets

---What each scheduled job does when it fires: `c:schedule(name, when, data)` runs
---the function of that name with its data.
---@alias parley.Jobs table<string, fun(c: parley.Conversation, data: any)>
