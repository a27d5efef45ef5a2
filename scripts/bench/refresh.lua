-- Refresh with rotation: every request presents a refresh token never used before. Each
-- connection starts from its own token (from tokens.txt, one per line) and continues with the
-- token that the previous response rotated in.
local tokens = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    i = i + 1
    if (i - 1) % tonumber(os.getenv("BENCH_THREADS")) + 1 == id then
      table.insert(tokens, line)
    end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local token = table.remove(tokens)
  if token == nil then
    token = "exhausted"
  end
  return wrk.format(nil, nil, nil, '{"refresh":"' .. token .. '"}')
end

function response(status, headers, body)
  local rotated = string.match(body, '"refresh":"([^"]+)"')
  if rotated then
    table.insert(tokens, rotated)
  end
end
