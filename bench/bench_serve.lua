-- bench_serve.lua - wrk script for bench/bench_serve.sh: POST a varied
-- stream of request bodies (one JSON document per line of $BODIES) to
-- $TARGET (default /predict), starting at a random line per thread;
-- without $BODIES, GET $TARGET.
-- Requests are formatted once at start-up, so wrk spends its time on the
-- network, not in Lua.  Prints one "RESULT key=value ..." line.
local path = os.getenv("BODIES")
local target = os.getenv("TARGET") or "/predict"
local hdr = { ["Content-Type"] = "application/json" }
local reqs = {}
if path == nil or path == "" then
  reqs[1] = wrk.format("GET", target)       -- no bodies: GET TARGET
else
  for line in io.lines(path) do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("POST", target, hdr, line)
    end
  end
end
local i = 0

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#reqs)
end

request = function()
  i = i % #reqs + 1
  return reqs[i]
end

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f " ..
    "p999_ms=%.3f max_ms=%.1f non2xx=%d sock_errors=%d\n",
    summary.requests, summary.requests / s,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
