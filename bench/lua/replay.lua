-- Replay precomputed requests (one per line of a file), each once, spread over wrk's threads,
-- and print one JSON line with the counts and latency percentiles.
--
--   wrk -t2 -c16 -d20s -s bench/lua/replay.lua http://127.0.0.1:8123 -- FILE THREADS [DELAY_MS]
--
-- A line is: METHOD <TAB> PATH <TAB> HEADERS <TAB> BODY, HEADERS being "Name:value" pairs
-- separated by \31 (unit separator). Bodies are precomputed and signed beforehand, so wrk
-- spends nothing on them at run time. If the file runs out, wrk starts it again and counts a
-- wrap (the bench makes files large enough that it never does).

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(args[2])
  pause_ms = tonumber(args[3] or "0")
  requests = {}
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % nthreads == id then
      local method, path, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {}
      for pair in header_text:gmatch("[^\31]+") do
        local name, value = pair:match("^([^:]+):(.*)$")
        headers[name] = value
      end
      if body == "" then body = nil end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
    line_no = line_no + 1
  end
  if #requests == 0 then
    -- fewer lines than threads (the no-op GET is one line): every thread replays them all
    for line in io.lines(args[1]) do
      local method, path, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format(method, path, {}, body ~= "" and body or nil)
    end
  end
  position = 0
  wraps = 0
  failures = 0
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    wraps = wraps + 1
  end
  return requests[position]
end

function response(status, headers, body)
  if status >= 300 then
    failures = failures + 1
  end
end

function delay()
  return pause_ms
end

function done(summary, latency, requests)
  local non2xx, wrapped = 0, 0
  for _, thread in ipairs(threads) do
    non2xx = non2xx + thread:get("failures")
    wrapped = wrapped + thread:get("wraps")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"wrapped":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, non2xx,
    errors.connect + errors.read + errors.write, errors.timeout, wrapped,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
