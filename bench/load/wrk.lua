-- wrk script for bench/load/bench.py. Configured through the environment (wrk's per-thread Lua states
-- all read it the same way):
--   BENCH_MODE   static  -> every request carries BENCH_BODY (wrk's fast path: no Lua per request)
--                unique  -> every request carries a new prompt (a counter plus random words), so a MISS
--                           stays a MISS: nothing equal or close to it was ever stored
--   BENCH_BODY   the JSON body for static mode
--   BENCH_SALT   seed for unique mode (different per run and per cell, so no two cells share prompts)
--   BENCH_WORDS  words per unique prompt (default 32, ~40 tokens)
-- Headers come from wrk's -H. done() prints one line `BENCHJSON {...}` that bench.py parses.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY") or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

local mode = os.getenv("BENCH_MODE") or "static"

if mode == "unique" then
  local salt = os.getenv("BENCH_SALT") or tostring(os.time())
  local nwords = tonumber(os.getenv("BENCH_WORDS") or "32")
  local seed = 0
  for i = 1, #salt do seed = (seed * 31 + salt:byte(i)) % 2147483647 end
  math.randomseed(seed)
  -- Real words: a transformer embeds random digit strings close to each other, word salads it does not.
  local vocab = {}
  for w in ([[apple river mountain engine violin carbon galaxy pepper harbor tunnel lantern meadow copper
    falcon glacier orchard pyramid saddle thunder velvet walnut yogurt zebra anchor blossom canyon dolphin ember
    fossil granite hazel iris jungle kettle lemon marble nectar oyster parrot quartz raven sapphire tulip umbrella
    vapor willow basil cedar dune eagle fern garlic harp igloo jasmine kiwi lotus mango nutmeg olive pearl quill
    rose saffron thyme urchin vanilla wasp yarrow zinc acorn badger cactus daisy elm flute gecko heron ivy jaguar
    koala lilac moose newt otter panda quail rhino salmon tiger unicorn viper walrus yak bison cobra dingo
    invoice budget contract server database network printer laptop keyboard monitor router cable battery
    tax refund salary pension mortgage insurance ticket flight hotel visa passport luggage train station
    explain summarize translate compare describe list write draft review fix debug deploy install configure]]):gmatch("%a+") do
    vocab[#vocab + 1] = w
  end
  local counter = 0
  request = function()
    counter = counter + 1
    local words = {}
    for i = 1, nwords do words[i] = vocab[math.random(#vocab)] end
    local prompt = "request " .. counter .. " " .. salt .. ": " .. table.concat(words, " ")
    local body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' .. prompt .. '"}]}'
    return wrk.format(nil, nil, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
