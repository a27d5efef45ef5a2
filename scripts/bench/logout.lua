-- Logs out (POST /api/token/blacklist/) a refresh token never used before on every request:
-- thread N takes the tokens of BENCH_TOKENS.<N> (as scripts/bench/issue.lua wrote them). A
-- thread that runs out sends "exhausted", which is refused: the run then fails rather than
-- measuring refusals.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("BENCH_TOKENS") .. "." .. id) do
    tokens[#tokens + 1] = line
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local token = table.remove(tokens) or "exhausted"
  return wrk.format(nil, nil, nil, '{"refresh":"' .. token .. '"}')
end
