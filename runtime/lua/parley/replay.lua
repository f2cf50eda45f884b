-- parley.replay: re-runs recorded conversations against a bot's scripts as
-- they are now, in the spec runtime (`parley replay`, and `parley test` for
-- the files of spec/replays/), and says per turn where the bot now answers
-- differently. The format of a replay file and what a replay does with the
-- world (time, payments, HTTP) are in docs/authoring.md ("parley replay").
--
-- A replay document (one conversation):
--   { parley = "replay/1", bot =, channel =, user =, source =,
--     orders = { the numbers of the conversation's orders, oldest first },
--     turns = { { at = ms, send = {text =, payload =, locale =, info =, event =},
--                 step = "flow.step" | "" (no flow) | absent (not known),
--                 replies = { {text =, choices =, cards =, link = {title =, url =}, image =, agent = {name =}} } } } }
--
-- It runs in the plain Lua state of the spec runtime and reaches the bot
-- through parley.testing.native, which it requires only when it runs.
local json = require "json"

local replay = {}

replay.FORMAT = "replay/1"

local function list(t)
  return json.array(t or {})
end

-- --- comparing -------------------------------------------------------------

local function quote(s)
  if s == nil or s == json.null then return "(none)" end
  return string.format("%q", tostring(s)):gsub("\\\n", "\\n")
end

local function choice_line(choices)
  if not choices or #choices == 0 then return "(none)" end
  local parts = {}
  for i, c in ipairs(choices) do
    parts[i] = c.payload and c.payload ~= c.title and (c.title .. " [" .. c.payload .. "]") or tostring(c.title)
  end
  return table.concat(parts, " | ")
end

local function card_line(cards)
  if not cards or #cards == 0 then return "(none)" end
  local parts = {}
  for i, c in ipairs(cards) do
    local price = c.price and string.format(" %s %s", tostring(c.price.amount), tostring(c.price.currency)) or ""
    local subtitle = c.subtitle and c.subtitle ~= json.null and (" — " .. quote(c.subtitle)) or ""
    local payload = c.payload and c.payload ~= c.sku and (" [" .. tostring(c.payload) .. "]") or ""
    local image = c.image and c.image ~= json.null and (" <" .. tostring(c.image) .. ">") or ""
    parts[i] = string.format("%s %s%s%s%s%s", tostring(c.sku), quote(c.title), price, subtitle, payload, image)
  end
  return table.concat(parts, " | ")
end

-- A link by its title and URL (a payment link comes without its URL,
-- which names one run's order and token).
local function link_line(link)
  if type(link) ~= "table" then return "(none)" end
  if type(link.url) ~= "string" then return quote(link.title) end
  return quote(link.title) .. " <" .. link.url .. ">"
end

-- The agent who said a reply, by name ({name = "sam"}).
local function agent_line(agent)
  if type(agent) == "table" then return quote(agent.name) end
  return quote(agent)
end

-- "text", "choices", "cards", "link", "image", "agent": how each is shown
local SHOWN = {
  { "text", quote }, { "choices", choice_line }, { "cards", card_line }, { "link", link_line },
  { "image", quote }, { "agent", agent_line },
}

-- s with each order number (a "#" and digits, as in "Order #57", not part
-- of a decimal) that numbers maps put as "#<order K>" (numbers: the number
-- as a string -> its K).
local function with_order_marks(s, numbers)
  return (s:gsub("#(%d+)()", function(digits, after)
    if s:find("^[.,]%d", after) then return nil end
    local k = numbers[digits]
    return k and ("#<order " .. k .. ">") or nil
  end))
end

-- Whether shown texts a (expected) and b (now) agree: equal, or equal once
-- every order number of b that is one of the replay's orders and every one
-- of a that is the recorded order it stands for read the same (ids: the
-- replay's number -> the recorded one, as strings). Any other number,
-- prices included, must be as recorded.
local function agree(a, b, ids)
  if not ids or not next(ids) then return a == b end
  local recorded, replayed = {}, {}
  for now, was in pairs(ids) do
    recorded[was], replayed[now] = was, was
  end
  return with_order_marks(a, recorded) == with_order_marks(b, replayed)
end

-- The differences between an expected turn and what the bot said now
-- ({replies =, step =}): a list of lines, empty when they agree. ids maps
-- the replay's order numbers to the recorded ones (a conversation's orders
-- get other numbers in a replay: those are not differences).
function replay.compare(expected, got, ids)
  local diffs = {}
  local function add(what, want, now)
    diffs[#diffs + 1] = what .. ":"
    diffs[#diffs + 1] = "  - " .. want
    diffs[#diffs + 1] = "  + " .. now
  end
  if expected.step ~= nil and expected.step ~= json.null and expected.step ~= got.step then
    add("step", expected.step == "" and "(no flow)" or expected.step, got.step == "" and "(no flow)" or got.step)
  end
  local want, now = expected.replies or {}, got.replies or {}
  for i = 1, math.max(#want, #now) do
    local a, b = want[i], now[i]
    if not a then
      diffs[#diffs + 1] = string.format("reply %d is new: %s", i, quote(b.text))
    elseif not b then
      diffs[#diffs + 1] = string.format("reply %d is gone: %s", i, quote(a.text))
    else
      for _, field in ipairs(SHOWN) do
        local name, show = field[1], field[2]
        local x, y = show(a[name]), show(b[name])
        if not agree(x, y, ids) then add(string.format("reply %d %s", i, name), x, y) end
      end
    end
  end
  return diffs
end

-- --- running ----------------------------------------------------------------

local native -- parley.testing.native, once a replay runs

local function step_of(doc)
  local s = native.session(doc.user, doc.channel)
  local frame = s and s.stack and s.stack[#s.stack]
  return frame and (frame.flow .. "." .. frame.step) or "", s
end

-- The "out" lines after line mark: their replies in one list, and the last
-- line's id.
local function said_since(doc, mark)
  local out = {}
  for _, line in ipairs(native.lines(doc.user, doc.channel, mark)) do
    mark = line.id
    if line.direction == "out" then
      for _, r in ipairs(line.body) do out[#out + 1] = r end
    end
  end
  return out, mark
end

-- Takes the URL off the payment links among replies: those of the
-- replay's orders and the test provider's (".../payments/test/ID?token=T"),
-- as pl_replay_write and a database's recording do.
local function without_payment_urls(doc, replies)
  local paying = {}
  for _, id in ipairs(native.orders(doc.user, doc.channel)) do
    local order = native.order(id)
    if order and type(order.payment_url) == "string" then paying[order.payment_url] = true end
  end
  for _, r in ipairs(replies) do
    local url = type(r.link) == "table" and r.link.url
    if type(url) == "string" and (paying[url] or url:find("/payments/test/", 1, true)) then
      r.link = { title = r.link.title }
    end
  end
end

local function last_id(doc)
  local lines = native.lines(doc.user, doc.channel, 0)
  return #lines > 0 and lines[#lines].id or 0
end

-- The latest time a turn may be at: the year 3000 (ms since 1970).
local LAST_MS = 32503680000000

-- Moves parley's clock to ms (back or forth); what falls due fires.
-- Returns nil, or why ms is not a time a turn can be at.
local function clock_to(ms)
  if ms == nil or ms == json.null then return nil end
  local at = math.type(ms) and math.tointeger(ms)
  if not at or at < 0 or at > LAST_MS then
    return string.format("\"at\": %s is not a time (whole ms since 1970, before the year 3000): "
      .. "the clock stays where it was", tostring(ms))
  end
  native.advance((at - native.now()) / 1000)
  return nil
end

-- The replay's order an event names: the k-th of this replay when it names
-- the k-th recorded order (doc.orders), else the one the conversation is
-- paying now. Returns the id, or nil and why there is none.
local function order_for(doc, event, state)
  local recorded = type(event.order) == "table" and event.order.id
  if recorded and type(doc.orders) == "table" then
    for k, id in ipairs(doc.orders) do
      if id == recorded then
        local own = native.orders(doc.user, doc.channel)[k]
        if own then return own end
        return nil, string.format("no order %d in this replay for the recorded order %s", k, tostring(recorded))
      end
    end
  end
  if state.order then return state.order end
  return nil, "no order of this conversation to " .. (event.type == "payment" and "pay" or "update")
end

-- Runs what a recorded turn sent. Payments and order updates name the
-- replay's own order (the one that stands for the recorded one); a job is
-- what the clock brought; any other event goes in as it was recorded, with
-- its locale and channel info. Returns nil, or a line saying why the turn
-- could not be replayed.
local function perform(doc, turn, state)
  local send = turn.send or {}
  local event = send.event
  local info = type(send.info) == "table" and send.info or nil
  local locale = type(send.locale) == "string" and send.locale or nil
  if event == nil or event == json.null then
    native.send({ user = doc.user, channel = doc.channel, text = send.text, payload = send.payload,
      locale = locale, info = info })
    return nil
  end
  if event.type == "job" then return nil end
  if event.type == "payment" or event.type == "order_status" then
    local id, why = order_for(doc, event, state)
    if not id then return why end
    if event.type == "payment" then
      native.confirm(id, event.status)
    else
      native.update(id, event.status, type(event.order) == "table" and event.order.tracking_url or nil)
    end
    return nil
  end
  native.event(doc.user, doc.channel, event, locale, info)
  return nil
end

-- Replays doc; returns {turns = {{n =, send =, diffs =, replies =, step =}},
-- differing = count of turns that differ, errors = the warnings and errors
-- logged meanwhile, doc = the document with the bot's answers of now}. The conversation's session is erased before and
-- after, and the clock is back where it was.
function replay.run(doc)
  native = native or require "parley.testing.native"
  assert(type(doc.user) == "string" and type(doc.channel) == "string", "a replay needs a user and a channel")
  local started = native.now()
  native.erase(doc.user, doc.channel)
  local result = { turns = {}, differing = 0 }
  local now = { parley = replay.FORMAT, bot = doc.bot, channel = doc.channel, user = doc.user,
    source = doc.source, orders = list(), turns = list() }
  local ids = {}
  local state = {}
  local mark = last_id(doc)
  for n, turn in ipairs(doc.turns or {}) do
    local bad_time = clock_to(turn.at)
    local early
    early, mark = said_since(doc, mark)
    local is_job = type(turn.send) == "table" and type(turn.send.event) == "table" and turn.send.event.type == "job"
    local problem = perform(doc, turn, state)
    problem = bad_time or problem
    local said
    said, mark = said_since(doc, mark)
    if is_job then
      said = early
    elseif #early > 0 then
      -- the bot said something on its own (a job) before this turn
      problem = problem or string.format("before this turn the bot said on its own: %s", quote(early[1].text))
    end
    without_payment_urls(doc, said)
    local step, session = step_of(doc)
    if session and session.pending_order then state.order = session.pending_order.id end
    -- (the replies as said: a replay file keeps fewer of their fields, see
    -- pl_replay_write, and replay.compare looks at those only)
    local got = { replies = list(said), step = step }
    -- the k-th order of the replay is the k-th recorded one
    for k, id in ipairs(native.orders(doc.user, doc.channel)) do
      now.orders[k] = id
      if type(doc.orders) == "table" and doc.orders[k] then ids[tostring(id)] = tostring(doc.orders[k]) end
    end
    local diffs = replay.compare(turn, got, ids)
    if problem then table.insert(diffs, 1, problem) end
    if #diffs > 0 then result.differing = result.differing + 1 end
    result.turns[n] = { n = n, send = turn.send, diffs = diffs, replies = got.replies, step = step }
    now.turns[n] = { at = turn.at, send = turn.send, step = step, replies = got.replies }
  end
  native.erase(doc.user, doc.channel)
  clock_to(started)
  result.errors = native.errors()
  result.doc = now
  return result
end

-- --- reporting ----------------------------------------------------------------

local function sent_line(send)
  send = send or {}
  if type(send.event) == "table" then
    local e = send.event
    return string.format("(%s%s)", tostring(e.type), e.status and (" " .. tostring(e.status)) or "")
  end
  if send.text then return quote(send.text) end
  return "[" .. tostring(send.payload) .. "]"
end

-- The report of one replayed conversation: a list of lines (where it came
-- from, then each turn that differs with its differences, and what was
-- logged as a warning or an error while it ran).
function replay.report(name, result)
  local lines = {}
  local turns = #result.turns
  if result.differing == 0 then
    lines[1] = string.format("%s: %d turn%s, no difference", name, turns, turns == 1 and "" or "s")
    return lines
  end
  lines[1] = string.format("%s: %d of %d turn%s differ", name, result.differing, turns, turns == 1 and "" or "s")
  for _, t in ipairs(result.turns) do
    if #t.diffs > 0 then
      lines[#lines + 1] = string.format("  turn %d, shopper %s", t.n, sent_line(t.send))
      for _, d in ipairs(t.diffs) do lines[#lines + 1] = "    " .. d end
    end
  end
  for _, e in ipairs(result.errors or {}) do lines[#lines + 1] = "  ! " .. e end
  return lines
end

-- --- parley test: the files of spec/replays/ as tests ----------------------------

local function read_doc(path)
  local f, err = io.open(path, "r")
  if not f then error(err, 0) end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(json.decode, text)
  if not ok then error(path .. ": not a replay file: " .. tostring(doc), 0) end
  if type(doc) ~= "table" or doc.parley ~= replay.FORMAT then
    error(path .. ": not a replay file (no \"parley\": \"" .. replay.FORMAT .. "\")", 0)
  end
  return doc
end

-- A shell word for path (quoted when it needs to be).
local function shell_word(path)
  if path:match("^[%w%./_%-]+$") then return path end
  return "'" .. path:gsub("'", "'\\''") .. "'"
end

-- Defines the busted test of one replay file (called from a chunk whose
-- environment is busted's, which passes describe, it and busted's fail: a
-- difference is the test's failure, not an error). path is relative to
-- the bot's folder, where busted runs; the command the failure suggests
-- names the folder as `parley test` was given it.
function replay.define(describe, it, path, fail)
  local name = path:match("([^/]+)$")
  describe("replay " .. name, function()
    it("answers as recorded", function()
      local result = replay.run(read_doc(path))
      if result.differing > 0 then
        native = native or require "parley.testing.native"
        local dir = native.dir():gsub("/+$", "")
        local file = (dir == "." and "" or dir .. "/") .. path
        local message = table.concat(replay.report(path, result), "\n") ..
          "\n(if the change is meant: parley replay " .. shell_word(dir) .. " --from " .. shell_word(file) ..
          " --accept)"
        if fail then fail(message, 0) end
        error(message, 0)
      end
    end)
  end)
end

local function replay_files(root)
  local dir = root:gsub("/+$", "") .. "/replays"
  local ok, pl_dir = pcall(require, "pl.dir")
  local path = require "pl.path"
  if not ok or not path.isdir(dir) then return {} end
  local files = {}
  for _, f in ipairs(pl_dir.getfiles(dir, "*.json")) do files[#files + 1] = f end
  table.sort(files)
  return files
end

-- Makes busted (about to run in this state) load, beside the specs of each
-- folder it is given, every ROOT/replays/*.json as a test of its own.
function replay.busted_files()
  -- (without busted, the runner's own require says what is missing)
  local ok, original = pcall(require, "busted.modules.test_file_loader")
  if not ok then return end
  package.loaded["busted.modules.test_file_loader"] = function(busted, loaders)
    local load_files, load_one, all_files = original(busted, loaders)
    local function load_all(roots, patterns, options)
      local replays = {}
      for _, root in ipairs(roots) do
        for _, file in ipairs(replay_files(root)) do replays[#replays + 1] = file end
      end
      -- (busted reports a folder without specs as an error: not when it has replays)
      local found = {}
      if #replays == 0 or #all_files(roots, patterns, options) > 0 then found = load_files(roots, patterns, options) end
      for _, file in ipairs(replays) do
        local chunk = assert(load(string.format("require('parley.replay').define(describe, it, %q, require('busted').fail)", file),
          "@" .. file))
        busted.executors.file(file, setmetatable({ getTrace = function(_, info) return info end },
          { __call = chunk }))
        found[#found + 1] = file
      end
      return found
    end
    return load_all, load_one, all_files
  end
end

return replay
