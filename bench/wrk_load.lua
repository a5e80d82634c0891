-- wrk script of `bench.serve`: random known customers, one JSON summary line at the end.
-- Environment: WRK_IDS (a file of customer ids, one a line), WRK_KIND (recommendations,
-- cross_sell or loyalty), WRK_ITEMS (item ids for cross-sell baskets), WRK_SEED.
local ids, items = {}, {}
for line in io.lines(os.getenv("WRK_IDS")) do ids[#ids + 1] = line end
local items_file = os.getenv("WRK_ITEMS")
if items_file and items_file ~= "" then
  for line in io.lines(items_file) do items[#items + 1] = line end
end
local kind = os.getenv("WRK_KIND") or "recommendations"
math.randomseed(tonumber(os.getenv("WRK_SEED") or "7"))

request = function()
  local id = ids[math.random(#ids)]
  if kind == "cross_sell" then
    local body = string.format('{"customer_id":"%s","items":["%s","%s"],"limit":4}', id,
      items[math.random(#items)], items[math.random(#items)])
    return wrk.format("POST", "/v1/recommendations/cross-sell",
      {["Content-Type"] = "application/json"}, body)
  elseif kind == "loyalty" then
    return wrk.format("GET", "/v1/customers/" .. id .. "/loyalty")
  end
  return wrk.format("GET", "/v1/customers/" .. id .. "/recommendations?placement=newsletter")
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout + e.status))
end
