-- wrk script: mixed paths, an API key and a request id per request.
--   wrk -t2 -c50 -d30s -s loadtest/mixed.lua http://host:port
-- Environment: API_KEY (sent as X-API-Key when set), PATHS (comma-separated, default "/").
local paths = {}
for p in string.gmatch(os.getenv("PATHS") or "/", "([^,]+)") do
  table.insert(paths, p)
end
local key = os.getenv("API_KEY")
local counter = 0

request = function()
  counter = counter + 1
  local headers = { ["X-Request-Id"] = "wrk-" .. counter }
  if key and key ~= "" then
    headers["X-API-Key"] = key
  end
  return wrk.format("GET", paths[(counter % #paths) + 1], headers)
end

done = function(summary, latency, requests)
  io.write(string.format("errors: connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
