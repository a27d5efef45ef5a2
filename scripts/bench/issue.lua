-- Has tokens issued with an API key (POST /api/token/issue/, key in BENCH_API_KEY) to users
-- drawn at random from the ids BENCH_USER_IDS ("FIRST-LAST"), and appends every refresh token
-- answered to BENCH_OUT.<thread number>, one a line: each one a session of its own, for the
-- logout scenario.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local first, last = string.match(os.getenv("BENCH_USER_IDS"), "^(%d+)-(%d+)$")
  low, high = tonumber(first), tonumber(last)
  math.randomseed(os.time() * 100 + id)
  out = io.open(os.getenv("BENCH_OUT") .. "." .. id, "a")
  out:setvbuf("line")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Api-Key " .. os.getenv("BENCH_API_KEY")
end

function request()
  return wrk.format(nil, nil, nil, '{"user_id":' .. math.random(low, high) .. '}')
end

function response(status, headers, body)
  local refresh = string.match(body, '"refresh":"([^"]+)"')
  if refresh then
    out:write(refresh, "\n")
  end
end
