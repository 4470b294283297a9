-- The Ringlog workload for wrk (benchmarks/lib/wrk.ts runs one wrk, with one thread, per
-- target node). Settings come from the environment, because wrk hands its script arguments
-- only to the threads, not to setup():
--   RINGLOG_WRK_METHOD    GET | PUT, to /kv/<prefix><n>, n uniform in [0, count)
--   RINGLOG_WRK_PREFIX, RINGLOG_WRK_KEYS, RINGLOG_WRK_VALUE_BYTES, RINGLOG_WRK_CONTENT_TYPE
--   RINGLOG_WRK_SEED      this wrk's place among those started together, so they draw different keys
--   RINGLOG_WRK_HISTOGRAM  a file for wrk's latency histogram
-- When the run ends it prints one line, RINGLOG_WRK <json>, with wrk's figures, and writes its
-- whole latency histogram, as wrk reports it (with its coordinated-omission correction), to
-- the histogram file: one "<microseconds> <samples>" line per latency seen.
-- benchmarks/lib/latency.ts takes the correction back out.

local seed = tonumber(os.getenv("RINGLOG_WRK_SEED") or "0")
local started = 0

function setup(thread)
  started = started + 1
  thread:set("index", seed * 1000 + started)
end

local method = os.getenv("RINGLOG_WRK_METHOD")
local prefix = "/kv/" .. os.getenv("RINGLOG_WRK_PREFIX")
local keys = tonumber(os.getenv("RINGLOG_WRK_KEYS"))
local valueBytes = tonumber(os.getenv("RINGLOG_WRK_VALUE_BYTES") or "0")
local headers = { ["Content-Type"] = os.getenv("RINGLOG_WRK_CONTENT_TYPE") }
-- Bodies come from a pool of random values drawn per request, so the load tool spends its CPU
-- sending rather than generating randomness (on 2 cores it takes that CPU from the servers).
local POOL = 256
local values = {}

function init(args)
  math.randomseed(os.time() * 1000 + index)
  if method == "PUT" then
    for i = 1, POOL do
      local bytes = {}
      for j = 1, valueBytes do bytes[j] = string.char(math.random(0, 255)) end
      values[i] = table.concat(bytes)
    end
  end
end

function request()
  local path = prefix .. math.random(0, keys - 1)
  if method == "PUT" then return wrk.format("PUT", path, headers, values[math.random(1, POOL)]) end
  return wrk.format("GET", path)
end

local ffi = require("ffi")

-- wrk's Lua API walks its histogram from the start for every bucket it returns, too slow for
-- a run with a long tail, so this reads wrk's stats struct (uint64 count, limit, min, max,
-- then data[limit], data[v] = samples at v µs) directly. The correction adds samples below
-- min without moving it, so the walk starts at zero.
local function writeHistogram(latency, path)
  local s = ffi.cast("uint64_t**", latency)[0]
  local data, max = s + 4, tonumber(s[3])
  local f = assert(io.open(path, "w"))
  for v = 0, max do
    local c = data[v]
    if c ~= 0 then f:write(v, " ", tonumber(c), "\n") end
  end
  f:close()
end

function done(summary, latency, requests)
  local e = summary.errors
  writeHistogram(latency, os.getenv("RINGLOG_WRK_HISTOGRAM"))
  io.write(string.format(
    'RINGLOG_WRK {"durationUs":%d,"completed":%d,"non2xx":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d}\n',
    summary.duration, summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
