-- soak.lua - wrk script of tests/soak/soak.sh: POST /predict with the
-- example body (argument 1, a file), each request with its own
-- customer_id (thread N uses N*10000000 + 1, 2, ...; nine digits fit the
-- log's varchar(10)), SOAK_DELAY_MS (argument 2) between the requests of
-- a connection.  Prints "soak: 200=N other=N" at the end.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  template = f:read("*a")
  f:close()
  pause = tonumber(args[2]) or 4
  n = 0
  ok = 0
  other = 0
  base = 100000000 + tid * 10000000
end

function request()
  n = n + 1
  local body = template:gsub('"customer_id": %d+',
                             '"customer_id": ' .. (base + n))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
                    body)
end

function delay()
  return pause
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local o, x = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    x = x + t:get("other")
  end
  io.write(string.format("soak: 200=%d other=%d p50=%.2fms p99=%.2fms\n",
                         o, x, latency:percentile(50) / 1000,
                         latency:percentile(99) / 1000))
end
