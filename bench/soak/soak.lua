-- wrk script of bench/soak/soak.py: a mix of exact hits, semantic hits, misses, streamed misses,
-- bypasses and upstream errors on one listener. Configured through the environment:
--   SOAK_SALT     makes this run's prompts new (misses stay misses)
--   SOAK_EXACT    '|'-separated prompts stored before the run (exact hits)
--   SOAK_NEAR     '|'-separated rewordings of stored prompts (semantic hits)
--   SOAK_MIX      weights "exact,semantic,miss,stream,bypass,error" (default 30,15,25,15,10,5)
-- response() classifies every answer (wrk does not say which request an answer belongs to, so by its
-- headers alone); done() prints `SOAKJSON {...}` that soak.py parses. An error is: a non-2xx the
-- stand-in did not make (its answers carry `x-standin`), an answer without x-cache-status, or a BYPASS
-- for any reason other than the no-store the bypass requests ask for (a fail-open under load).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function split(s)
  local out = {}
  for w in (s or ""):gmatch("[^|]+") do out[#out + 1] = w end
  return out
end

local kinds = {"exact", "semantic", "miss", "stream", "bypass", "error"}

function init(args)
  salt = os.getenv("SOAK_SALT") or tostring(os.time())
  exact = split(os.getenv("SOAK_EXACT"))
  near = split(os.getenv("SOAK_NEAR"))
  weights = {}
  local total = 0
  for w in (os.getenv("SOAK_MIX") or "30,15,25,15,10,5"):gmatch("%d+") do
    total = total + tonumber(w)
    weights[#weights + 1] = total
  end
  wtotal = total
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  counter = 0
  sent = {}
  got = {}
  for _, k in ipairs(kinds) do sent[k] = 0 end
  bad = 0
  bad_example = ""
  upstream_errors = 0
  hit = 0
  miss = 0
  bypass = 0
end

local function body(prompt, stream)
  local s = stream and ',"stream":true' or ""
  return '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' .. prompt .. '"}]' .. s .. '}'
end

request = function()
  counter = counter + 1
  local r = math.random(wtotal)
  local kind = "error"
  for i, w in ipairs(weights) do
    if r <= w then kind = kinds[i]; break end
  end
  sent[kind] = sent[kind] + 1
  -- wrk.format() uses only the headers it is given: start from wrk's own (-H Authorization ...)
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  h["Content-Type"] = "application/json"
  if kind ~= "exact" and kind ~= "semantic" then
    -- new prompts go to their own partition: the hits' partition stays at the few pre-stored
    -- entries, so a semantic hit never depends on HNSW recall among thousands of misses
    h["x-semantic-cache-key"] = "soak-new"
  end
  local unique = "soak " .. salt .. " " .. counter .. " " .. math.random(1000000000) .. ": describe item " .. counter
  if kind == "exact" then
    return wrk.format("POST", nil, h, body(exact[math.random(#exact)], false))
  elseif kind == "semantic" then
    return wrk.format("POST", nil, h, body(near[math.random(#near)], false))
  elseif kind == "miss" then
    h["Cache-Control"] = "max-age=5"  -- entries of the run expire: Redis holds a steady amount
    return wrk.format("POST", nil, h, body(unique, false))
  elseif kind == "stream" then
    h["Cache-Control"] = "max-age=5"
    h["x-soak-kind"] = "stream"
    return wrk.format("POST", nil, h, body(unique, true))
  elseif kind == "bypass" then
    h["Cache-Control"] = "no-store"
    return wrk.format("POST", nil, h, body(unique, false))
  else
    h["x-soak-kind"] = "error"
    return wrk.format("POST", nil, h, body(unique, false))
  end
end

response = function(status, headers, body)
  local cs = headers["x-cache-status"]
  local ok = true
  if cs == "HIT" then hit = hit + 1 elseif cs == "MISS" then miss = miss + 1 elseif cs == "BYPASS" then bypass = bypass + 1 end
  if status < 200 or status > 299 then
    ok = headers["x-standin"] ~= nil and cs == "MISS"
    if ok then upstream_errors = upstream_errors + 1 end
  elseif cs == nil then
    ok = false
  elseif cs == "BYPASS" then
    ok = headers["x-cache-bypass-reason"] == "no-store"
  end
  if not ok then
    bad = bad + 1
    if bad_example == "" then
      bad_example = "status=" .. status .. " x-cache-status=" .. tostring(cs) .. " reason=" ..
        tostring(headers["x-cache-bypass-reason"])
    end
  end
end

function done(summary, latency, requests)
  local t = {bad = 0, upstream_errors = 0, hit = 0, miss = 0, bypass = 0}
  local sent_t = {}
  for _, k in ipairs(kinds) do sent_t[k] = 0 end
  local example = ""
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
    local s = th:get("sent")
    for _, k in ipairs(kinds) do sent_t[k] = sent_t[k] + (s[k] or 0) end
    local ex = th:get("bad_example")
    if ex and ex ~= "" and example == "" then example = ex end
  end
  local e = summary.errors
  io.write(string.format(
    'SOAKJSON {"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_status":%d,"errors_timeout":%d,"bad":%d,"bad_example":"%s","upstream_errors":%d,"hit":%d,' ..
    '"miss":%d,"bypass":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"sent":{"exact":%d,"semantic":%d,' ..
    '"miss":%d,"stream":%d,"bypass":%d,"error":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, t.bad,
    example, t.upstream_errors, t.hit, t.miss, t.bypass,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    sent_t.exact, sent_t.semantic, sent_t.miss, sent_t.stream, sent_t.bypass, sent_t.error))
end
