#!/usr/bin/env bash
# The first line of every call after the first one on a lent GPU machine that holds a round of
# tools/layup_continue.sh:
#   bash tools/round_wait.sh OUTDIR SECONDS && bash tools/round_files.sh OUTDIR $OUT ARM ...
# Exits 3 at once, with one line, if OUTDIR is not there: the call found a fresh machine, the round went back with
# the one that held it, and waiting on would spend the call's device time on nothing (round 10's second call slept
# 575 s on a fresh machine). Otherwise waits until the round's status says DONE or SECONDS have passed, showing
# the status's last line each minute.
# A machine goes back 30 s after a call returns, and the reply, then the next call, can take longer than that on
# the caller's side: rounds 8, 9 and 10 each lost one. Plan a round as pieces that each fit one call's foreground
# (tools/round_files.sh's header) and continue on whatever machine the next call finds, from the policy files
# brought back; use this script only where a piece has to span two calls.
set -u
R=${1:?round dir}; S=${2:?seconds to wait at most}
[[ -d "$R" ]] || { echo "round_wait.sh: $R is not on this machine: a fresh machine, the round is lost with the last one" >&2; exit 3; }
end=$(( SECONDS + S ))
while (( SECONDS < end )); do
  grep -q DONE "$R/status" 2>/dev/null && break
  left=$(( end - SECONDS )); sleep $(( left < 60 ? left : 60 ))
  echo "$(date +%T) $(tail -n 1 "$R/status" 2>/dev/null)"
done
tail -n 1 "$R/status" 2>/dev/null
exit 0
