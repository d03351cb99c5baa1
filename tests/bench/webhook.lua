-- webhook.lua - wrk script for the order ingest benchmark
-- (bench_webhooks.sh): POSTs pre-signed webhooks, one distinct order per
-- request, and counts the answers.
--
-- Usage: wrk -tT ... -s webhook.lua URL -- LINES_FILE T
--   LINES_FILE holds "<signature>\t<body>" lines (bench-sign-orders). T
--   must be wrk's -t: thread k (0-based) sends lines k, k+T, k+2T, ... so
--   no two threads send the same order. Each thread reads the file once,
--   in init(), and keeps only its own lines, already formatted as requests.
--   When a thread has sent all of its lines it starts again from its first
--   one: those requests are duplicates (answered 200, not 201), and done()
--   says how many there were.
--
-- done() prints, one "key value" per line (for the shell to read):
--   webhook_created N      201 answers
--   webhook_duplicate N    200 answers
--   webhook_other N        any other status
--   webhook_wrapped N      requests sent after a thread ran out of lines
--   webhook_lines N        lines loaded (all threads)

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
created = 0
duplicate = 0
other = 0
wrapped = 0
loaded = 0

local reqs = {}
local n = 0
local next_i = 1
local wrapped_on = false

function init(args)
	local file, nthreads = args[1], tonumber(args[2])
	if file == nil or nthreads == nil or nthreads < 1 then
		io.stderr:write("webhook.lua: usage: -s webhook.lua URL -- LINES_FILE THREADS\n")
		os.exit(2)
	end
	local f = io.open(file, "r")
	if f == nil then
		io.stderr:write("webhook.lua: cannot open " .. file .. "\n")
		os.exit(2)
	end
	local i = 0
	for line in f:lines() do
		if i % nthreads == id then
			local tab = line:find("\t", 1, true)
			if tab ~= nil then
				n = n + 1
				reqs[n] = wrk.format("POST", "/webhook/orders", {
					["Content-Type"] = "application/json",
					["X-Partner-Signature"] = line:sub(1, tab - 1),
				}, line:sub(tab + 1))
			end
		end
		i = i + 1
	end
	f:close()
	loaded = n
	if n == 0 then
		io.stderr:write("webhook.lua: thread " .. id .. " has no lines in " .. file .. "\n")
		os.exit(2)
	end
end

function request()
	local r = reqs[next_i]
	next_i = next_i + 1
	if next_i > n then
		next_i = 1
	end
	if wrapped_on then
		wrapped = wrapped + 1
	elseif next_i == 1 then
		-- The last fresh line goes out now; the next one is a repeat.
		wrapped_on = true
	end
	return r
end

function response(status, headers, body)
	if status == 201 then
		created = created + 1
	elseif status == 200 then
		duplicate = duplicate + 1
	else
		other = other + 1
	end
end

-- Runs in the main state after the run.
function done(summary, latency, requests)
	local c, d, o, w, l = 0, 0, 0, 0, 0
	for _, t in ipairs(threads) do
		c = c + t:get("created")
		d = d + t:get("duplicate")
		o = o + t:get("other")
		w = w + t:get("wrapped")
		l = l + t:get("loaded")
	end
	io.write(string.format("webhook_created %d\n", c))
	io.write(string.format("webhook_duplicate %d\n", d))
	io.write(string.format("webhook_other %d\n", o))
	io.write(string.format("webhook_wrapped %d\n", w))
	io.write(string.format("webhook_lines %d\n", l))
	if w > 0 then
		io.write(string.format("webhook.lua: the lines ran out; %d requests " ..
			"repeated an order already sent (answered 200, not 201)\n", w))
	end
end
