-- wrk script: POST pre-built bodies to one path, cycling through them.
-- Set by benchmarks/wrk.py:
--   BENCH_PATH     request path, e.g. /v1/batch
--   BENCH_HEADERS  "Name: value" lines separated by newlines
--   BENCH_BODIES   file of bodies, each written as "<length>\n<bytes>" (binary safe, for gzip)
-- Requests are formatted once, so wrk spends no time building them.

local path = os.getenv("BENCH_PATH")
-- wrk.format adds no Host header when given its own header table; HTTP/1.1 servers require one.
local headers = {Host = wrk.host .. ":" .. wrk.port}
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  headers[name] = value
end

local requests = {}
local f = assert(io.open(os.getenv("BENCH_BODIES"), "rb"))
while true do
  local len = f:read("*l")
  if not len then break end
  requests[#requests + 1] = wrk.format("POST", path, headers, f:read(tonumber(len)))
end
f:close()

local i = 0
request = function()
  i = i % #requests + 1
  return requests[i]
end

-- One JSON line after wrk's own report, read by benchmarks/wrk.py.
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
