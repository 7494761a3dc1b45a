#!/usr/bin/env bash
# Copy a running (or finished) round of tools/layup_continue.sh somewhere small enough to bring back from a lent GPU
# machine, whose calls return at most 8 files of at most 16 MiB (64 MiB together):
#   bash tools/round_files.sh OUTDIR DEST [ARM ...]
# DEST/run.tar.gz: the round's status, logs, arms file, every arm's progress.csv and evaluation, the GPUs it ran on
# (no policy or checkpoint files); DEST/policy_ARM.pt: the latest policy file (actor, critic, normalisers: enough
# to continue the arm, train_llc.py --init-from) of each ARM named, at most 4 a call (about 15 MiB each). A file over
# the 16 MiB a returned file may have (a --skill-heads policy of 19 skills is 16.8 MB; round 11's YH was left out of a
# return so) comes back as 15 MiB parts DEST/policy_ARM.pt.part_aa, _ab: `cat policy_ARM.pt.part_* > policy_ARM.pt`.
# Safe while the arms run: train_llc.py writes a policy file under another name and renames it, so a copy is whole.
# Run it at the end of every watching call, not only the last: a lent machine goes back 30 s after a call returns,
# and a longer gap on the caller's side (round 8's first launch) loses everything not yet brought back. Round 9
# lost its machine right after a call that brought back two policy files (29 MB), the next call sent at once: the
# transfer seems to count in those 30 s. Round 10 lost its machine after a call that brought back 34 kB, the next
# call sent at once (the reply and the next call together took over 30 s on the caller's side). A round that fits
# one call (warm-up, T, evaluation within 595 s) is safest run in the foreground of that call, with this script at
# its end (round 9's second piece and round 10's B3 did so; tools/round_piece.sh does all of it); a call that
# continues a round begins with tools/round_wait.sh, which ends it at once on a fresh machine.
set -eu
R=${1:?round dir}; D=${2:?destination}; shift 2
(( $# <= 4 )) || { echo "round_files.sh: $# arms named: at most 4 policy files fit one call's 64 MiB" >&2; exit 2; }
mkdir -p "$D"
nvidia-smi -L > "$R/gpus.txt" 2>/dev/null || echo "no NVIDIA GPU" > "$R/gpus.txt"
(cd "$R" && find . -maxdepth 2 \( -name status -o -name '*.log' -o -name '*.txt' -o -name '*.json' \
  -o -name progress.csv \) -print0 | tar -czf - --null -T -) > "$D/run.tar.gz.tmp"
mv "$D/run.tar.gz.tmp" "$D/run.tar.gz"
PART=$(( 15 * 1024 * 1024 ))
for arm in "$@"; do
  if [[ -f "$R/$arm/policy.pt" ]]; then
    cp "$R/$arm/policy.pt" "$D/policy_$arm.pt.tmp"
    if (( $(stat -c %s "$D/policy_$arm.pt.tmp") > 16 * 1024 * 1024 )); then
      rm -f "$D/policy_$arm.pt" "$D/policy_$arm.pt".part_*
      split -b "$PART" "$D/policy_$arm.pt.tmp" "$D/policy_$arm.pt.part_" && rm "$D/policy_$arm.pt.tmp"
      echo "policy_$arm.pt over 16 MiB: brought back in parts;" \
        "join them with cat policy_$arm.pt.part_* > policy_$arm.pt"
    else
      rm -f "$D/policy_$arm.pt".part_* && mv "$D/policy_$arm.pt.tmp" "$D/policy_$arm.pt"
    fi
  else
    echo "no policy file yet: $arm"
  fi
done
files=$(find "$D" -maxdepth 1 -type f | wc -l); bytes=$(du -sb "$D" | cut -f1)
(( files <= 8 && bytes <= 64 * 1024 * 1024 )) ||
  echo "round_files.sh: $D holds $files files, $bytes bytes: a call returns at most 8 files, 64 MiB;" \
    "some will be left out"
tail -n 3 "$R/status"
for arm in $(cd "$R" && ls -d */ 2>/dev/null | tr -d /); do
  [[ -f "$R/$arm/progress.csv" ]] && echo "$arm: $(tail -n 1 "$R/$arm/progress.csv" | cut -c1-160)"
done
ls -la "$D"
