-- scripts/jobs.lua: the job "remind" schedules.
return {
  nudge = function(c) c:say "nudge" end,
}
