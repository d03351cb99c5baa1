-- webhook.lua - wrk script for the order ingest benchmark
-- (bench_webhooks.sh): POSTs pre-signed webhooks, one distinct order per
-- request, and counts the answers.
--
-- Usage: wrk -tT ... -s webhook.lua URL -- LINES_FILE T
--   LINES_FILE holds "<signature>\t<body>" lines (bench-sign-orders). T
--   must be wrk's -t: thread k (0-based) sends lines k, k+T, k+2T, ... so
--   no two threads send the same order. When a thread has sent all of its
--   lines it starts again from its first one: those requests are
--   duplicates (answered 200, not 201), and done() says how many there
--   were.
--
-- There is no response(): with one, wrk hands every answer's headers and
-- body to Lua as a table and a string, 43 against 32 us of wrk's CPU per
-- request here, taken from the two cores the servers are measured on.
-- wrk counts the answers that are not 2xx itself ("Non-2xx or 3xx
-- responses"); with no line sent twice, every 2xx is a new order's 201,
-- and bench_webhooks.sh checks SQLite holds them all.
--
-- init() only reads the file into one string; request() takes the
-- thread's next line from it and formats the request. wrk runs each
-- thread's init() in its main thread, one after the other, starting
-- thread k before it runs thread k+1's, and starts its clock of the run
-- after the last: requests sent during a later thread's init() are
-- counted over the run's shorter time. Formatting every line in init()
-- took about 1.5 s per thread at 200,000 lines, and wrk reported 59,000
-- requests/s against the bare handler that answers about 40,000;
-- reading the file takes a few tens of milliseconds.
--
-- done() prints, one "key value" per line (for the shell to read):
--   webhook_wrapped N      requests sent after a thread ran out of lines
--   webhook_lines N        distinct lines sent (all threads)

local threads = {}
local counter = 0

-- Runs in wrk's main Lua state, once per thread, before the thread starts.
function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

-- The per-thread state (globals here are what thread:get reads).
id = 0
wrapped = 0
loaded = 0

local data = nil
local pos = 1       -- where the thread's next line starts in data
local nthreads = 1
local wrapped_on = false
local host = "localhost"

-- The position of the line after the one starting at p (wrapping to the
-- first line at the end); the second value says it wrapped.
local function next_line(p)
	local e = data:find("\n", p, true)
	if e == nil or e + 1 > #data then
		return 1, true
	end
	return e + 1, false
end

function init(args)
	local file, t = args[1], tonumber(args[2])
	if file == nil or t == nil or t < 1 then
		io.stderr:write("webhook.lua: usage: -s webhook.lua URL -- LINES_FILE THREADS\n")
		os.exit(2)
	end
	nthreads = t
	host = wrk.host .. (wrk.port and (":" .. wrk.port) or "")
	local f = io.open(file, "r")
	if f == nil then
		io.stderr:write("webhook.lua: cannot open " .. file .. "\n")
		os.exit(2)
	end
	data = f:read("*a")
	f:close()
	-- Thread k starts at line k.
	for _ = 1, id do
		local w
		pos, w = next_line(pos)
		if w then
			break
		end
	end
	if #data == 0 or data:find("\t", pos, true) == nil then
		io.stderr:write("webhook.lua: thread " .. id .. " has no lines in " .. file .. "\n")
		os.exit(2)
	end
end

function request()
	local e = data:find("\n", pos, true) or (#data + 1)
	local tab = data:find("\t", pos, true)
	-- One concatenation, not wrk.format (which builds a table of headers
	-- and walks it per request): wrk runs on the cores it measures, and
	-- wrk.format cost it 56 us of CPU per request against 38 us so.
	local r = "POST /webhook/orders HTTP/1.1\r\nHost: " .. host ..
		"\r\nContent-Type: application/json\r\nX-Partner-Signature: " ..
		data:sub(pos, tab - 1) .. "\r\nContent-Length: " .. (e - 1 - tab) ..
		"\r\n\r\n" .. data:sub(tab + 1, e - 1)
	if wrapped_on then
		wrapped = wrapped + 1
	else
		loaded = loaded + 1
	end
	-- On to the thread's next line: nthreads lines further.
	for _ = 1, nthreads do
		local w
		pos, w = next_line(pos)
		if w then
			-- Past the last line: this thread's lines start again.
			wrapped_on = true
			pos = 1
			for _ = 1, id do
				pos = next_line(pos)
			end
			break
		end
	end
	return r
end

-- Runs in the main state after the run.
function done(summary, latency, requests)
	local w, l = 0, 0
	for _, t in ipairs(threads) do
		w = w + t:get("wrapped")
		l = l + t:get("loaded")
	end
	io.write(string.format("webhook_wrapped %d\n", w))
	io.write(string.format("webhook_lines %d\n", l))
	if w > 0 then
		io.write(string.format("webhook.lua: the lines ran out; %d requests " ..
			"repeated an order already sent (answered 200, not 201)\n", w))
	end
end
