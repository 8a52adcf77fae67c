-- Every request gets a key never asked before: PATH?u=PREFIX-N, where PREFIX is the first script
-- argument (the runner passes one per run, so a warm-up never pre-fills the measured keys).
dofile('bench/wrk-report.lua')

local prefix = 'u'
local counter = 0

init = function(args)
  prefix = args[1] or prefix
end

request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. '?u=' .. prefix .. '-' .. counter)
end
