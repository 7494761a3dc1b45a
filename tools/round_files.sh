#!/usr/bin/env bash
# Copy a running (or finished) round of tools/layup_continue.sh somewhere small enough to bring back from a lent GPU
# machine, whose calls return at most 8 files of at most 16 MiB (64 MiB together):
#   bash tools/round_files.sh OUTDIR DEST [ARM ...]
# DEST/run.tar.gz: the round's status, logs, arms file, every arm's progress.csv and evaluation, the GPUs it ran on
# (no policy or checkpoint files); DEST/policy_ARM.pt: the latest policy file (actor, critic, normalisers: enough to
# continue the arm, train_llc.py --init-from) of each ARM named, in the order named while it fits what a call returns
# (a file that does not is left out and named, the next ones still tried: round 16 named six arms and, refused then,
# brought back nothing, not even run.tar.gz, in three pieces), and for a
# high-level controller's arm (OUTDIR/hlc_arms.txt) its training checkpoint, DEST/checkpoint_ARM.pt (train_hlc.py
# --resume; 13 MB at 8 environments, its environments' state on top). A file over the 16 MiB a returned file may have
# (a --skill-heads policy of 19 skills is 16.8 MB; round 11's YH was left out of a return so) comes back as 15 MiB
# parts DEST/policy_ARM.pt.part_aa, _ab: `cat policy_ARM.pt.part_* > policy_ARM.pt`.
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
mkdir -p "$D"
nvidia-smi -L > "$R/gpus.txt" 2>/dev/null || echo "no NVIDIA GPU" > "$R/gpus.txt"
(cd "$R" && find . -maxdepth 2 \( -name status -o -name '*.log' -o -name '*.txt' -o -name '*.json' \
  -o -name progress.csv \) -print0 | tar -czf - --null -T -) > "$D/run.tar.gz.tmp"
mv "$D/run.tar.gz.tmp" "$D/run.tar.gz"
PART=$(( 15 * 1024 * 1024 )); MIB16=$(( 16 * 1024 * 1024 )); MAX_FILES=8; MAX_BYTES=$(( 64 * 1024 * 1024 ))
bring() {  # bring FILE NAME: FILE as DEST/NAME, in 15 MiB parts DEST/NAME.part_aa, _ab, ... when over 16 MiB
  local size parts files bytes
  size=$(stat -c %s "$1"); parts=1; (( size > MIB16 )) && parts=$(( (size + PART - 1) / PART ))
  rm -f "$D/$2" "$D/$2".part_*  # an earlier copy of it (this script run again into DEST) makes room
  files=$(find "$D" -maxdepth 1 -type f | wc -l); bytes=$(du -sb "$D" | cut -f1)
  if (( files + parts > MAX_FILES || bytes + size > MAX_BYTES )); then
    echo "round_files.sh: left out $2 ($size bytes, $parts file(s)): $files files, $bytes bytes already in $D" \
      "(a call returns at most $MAX_FILES files, 64 MiB); fetch it in a call of its own"
    return 0
  fi
  cp "$1" "$D/$2.tmp"
  if (( size > MIB16 )); then
    split -b "$PART" "$D/$2.tmp" "$D/$2.part_" && rm "$D/$2.tmp"
    echo "$2 over 16 MiB: brought back in parts; join them with cat $2.part_* > $2"
  else
    mv "$D/$2.tmp" "$D/$2"
  fi
}
for arm in "$@"; do
  if [[ -f "$R/$arm/policy.pt" ]]; then bring "$R/$arm/policy.pt" "policy_$arm.pt"
  else echo "no policy file yet: $arm"; fi
  # a high-level controller's (tools/layup_continue.sh's hlc arm) training checkpoint too: it resumes from it
  if grep -qx "$arm" "$R/hlc_arms.txt" 2>/dev/null && [[ -f "$R/$arm/checkpoint.pt" ]]; then
    bring "$R/$arm/checkpoint.pt" "checkpoint_$arm.pt"
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
