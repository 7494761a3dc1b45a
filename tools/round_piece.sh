#!/usr/bin/env bash
# One piece of a round on a lent GPU machine, all of it in the foreground of one call (tools/round_files.sh's header
# says why: rounds 8, 9 and 10 each lost a machine between two calls):
#   PIECES=N [ONLY="A B"] [MOTION=DIR] bash tools/round_piece.sh CARRY BUDGET INIT ARMS_FILE ARM ...
# run from the call's working copy, after the stash calls that copied every carry folder of
# `python tools/carry_pack.py pack` but the last into $STASH (`mkdir -p /root/stash && cp -a FOLDER/. /root/stash/`).
# CARRY: the last carry folder (it travels with this call). N: the pieces of all the folders together
# (`find PACKED -type f | wc -l`). BUDGET: the seconds this script may take (the call's limit less a margin: 575).
# It copies CARRY's pieces to $STASH and exits 3 at once unless $STASH then holds N pieces (the stash calls went to
# another machine); copies the tree (skillmimic tools data configs train_llc.py train_hlc.py) to $WORK, joins the
# pieces there (wheels into $WHL, the other files at their paths), installs the wheels into $SITE; runs
# tools/layup_continue.sh $WORK/run T INIT ARMS_FILE there (ONLY, MOTION and its other variables as it reads them),
# T what BUDGET leaves after the set-up, the warm-up's compile (WARM, 150 s) and the evaluation with this script's
# end (TAIL, 75 s); then tools/round_files.sh $WORK/run $OUT ARM ... brings back the run's files and each ARM's
# policy file, and every arm's evaluation is printed as one line (tools/eval_line.py: the success of each skill with
# a test, the mean, the falls), and with KEPT_EVAL each of its kept files' (tools/layup_continue.sh), so the call's
# output says which arm is ahead before its machine goes back.
# The next piece starts from those files, on whatever machine its call finds.
# Every arm's policy file (named or not) is also kept on the machine, in $KEEP/policy_ARM.pt (and a high-level
# controller's training checkpoint in $KEEP/checkpoint_ARM.pt): the next piece, when
# its call finds the same machine (its stash whole), continues from there (CONTINUE=$KEEP, WARM=40: the kernels are
# cached), so that the policy files need not travel back (a last short call can fetch the unnamed ones: `cp
# $KEEP/policy_ARM.pt $OUT/`); a piece's tree goes to $WORK, or $WORK.2, .3, ... when an earlier piece ran there.
# STASH, WORK, WHL, SITE, KEEP default to /root/stash, /root/work, /root/whl, /root/site, /root/cont; WARP_CACHE_PATH to
# /root/warpcache. Warp's kernel cache: KEEP_CACHE=1 brings it back as $OUT/warpcache.tgz when it fits what a call
# returns (16 MiB a file, 64 MiB with the policy files); WARP_TGZ=FILE (that file, packed with the next piece's
# pieces: a path in the joined tree, or absolute) is unpacked into WARP_CACHE_PATH before the warm-up, so that the
# next machine compiles only what changed (then set WARM lower: the compile took 115-137 s on a fresh H200). A call
# carries at most 64 MiB with the working tree: `bash tools/carry_tree.sh slim` before the stash calls (docs, results,
# data and the assets' policy files left out), `data` before this script's call (it copies data; the policy files it
# needs travel as pieces), `full` afterwards.
set -u
start=$SECONDS
CARRY=${1:?the last carry folder}; BUDGET=${2:?seconds this script may take}; INIT=${3:?policy file to continue}
ARMS_FILE=${4:?arms file}; shift 4
(( $# >= 1 )) || { echo "round_piece.sh: name the arms whose policy files come back" >&2; exit 2; }
: "${PIECES:?PIECES: the number of pieces of all the carry folders}"
STASH=${STASH:-/root/stash}; WORK=${WORK:-/root/work}; WHL=${WHL:-/root/whl}; SITE=${SITE:-/root/site}
KEEP=${KEEP:-/root/cont}
OUT=${OUT:?OUT: the folder whose files come back}
[[ -d "$CARRY" ]] || { echo "round_piece.sh: $CARRY is not a folder" >&2; exit 2; }
mkdir -p "$STASH" && cp -a "$CARRY"/. "$STASH"/
held=$(find "$STASH" -maxdepth 1 -type f | wc -l)
(( held == PIECES )) || {
  echo "round_piece.sh: $STASH holds $held pieces, not $PIECES: a fresh machine (the stash calls went to another)" >&2
  exit 3; }
if [[ -e "$WORK/run" ]]; then  # an earlier piece on this machine: its run stays as it is
  n=2; while [[ -e "$WORK.$n/run" ]]; do n=$(( n + 1 )); done; WORK=$WORK.$n
fi
echo "round_piece.sh: the tree in $WORK"
mkdir -p "$WORK" "$WHL" "$SITE"
cp -a skillmimic tools data configs train_llc.py train_hlc.py "$WORK"/ || exit 1
python tools/carry_pack.py join "$STASH" --wheels "$WHL" --into "$WORK" > "$WORK/join.log" || exit 1
if compgen -G "$WHL/*.whl" > /dev/null; then
  pip install -q --no-index --no-deps --target "$SITE" "$WHL"/*.whl > "$WORK/pip.log" 2>&1 || {
    tail -n 5 "$WORK/pip.log"; exit 1; }
fi
cd "$WORK" || exit 1
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" WARP_CACHE_PATH=${WARP_CACHE_PATH:-/root/warpcache}
export PYTHONUNBUFFERED=1
if [[ -n ${WARP_TGZ:-} ]]; then
  mkdir -p "$WARP_CACHE_PATH" && tar -xzf "$WARP_TGZ" -C "$WARP_CACHE_PATH" || {
    echo "round_piece.sh: WARP_TGZ=$WARP_TGZ could not be unpacked" >&2; exit 2; }
  echo "round_piece.sh: Warp's kernel cache unpacked from $WARP_TGZ"
fi
T=$(( BUDGET - (SECONDS - start) - ${WARM:-150} - ${TAIL:-75} ))
(( T >= 30 )) || { echo "round_piece.sh: $BUDGET s leave $T s of training after the set-up: too few" >&2; exit 2; }
echo "round_piece.sh: set up in $(( SECONDS - start )) s; the arms train ${T} s"
timeout $(( BUDGET - (SECONDS - start) - 15 )) bash tools/layup_continue.sh "$WORK/run" "$T" "$INIT" "$ARMS_FILE"
bash tools/round_files.sh "$WORK/run" "$OUT" "$@"
mkdir -p "$KEEP"
# Every arm that ran, not only those whose files come back (round 13 kept two arms' files from the piece before the
# last, as they were named then: the last piece's training of them was lost with the machine): its evaluation as one
# line of this call's output, its policy file kept for a next piece here.
for dir in "$WORK/run"/*/; do
  arm=$(basename "$dir"); [[ $arm == warmup ]] && continue
  [[ -f "$WORK/run/$arm.eval.json" ]] && { python tools/eval_line.py "$WORK/run/$arm.eval.json" || true; }
  for kept in "$WORK/run/$arm".kept_*.json; do  # its kept files' evaluations (KEPT_EVAL), a line a file
    [[ -f "$kept" ]] && { python tools/eval_line.py "$kept" || true; }
  done
  [[ -f "$WORK/run/$arm/policy.pt" ]] && cp "$WORK/run/$arm/policy.pt" "$KEEP/policy_$arm.pt.tmp" &&
    mv "$KEEP/policy_$arm.pt.tmp" "$KEEP/policy_$arm.pt"
  # a high-level controller continues from its training checkpoint (tools/layup_continue.sh's hlc arm)
  grep -qx "$arm" "$WORK/run/hlc_arms.txt" 2>/dev/null && [[ -f "$WORK/run/$arm/checkpoint.pt" ]] &&
    cp "$WORK/run/$arm/checkpoint.pt" "$KEEP/checkpoint_$arm.pt.tmp" &&
    mv "$KEEP/checkpoint_$arm.pt.tmp" "$KEEP/checkpoint_$arm.pt"
done
echo "round_piece.sh: the next piece on this machine: CONTINUE=$KEEP WARM=40"
if [[ ${KEEP_CACHE:-0} == 1 ]]; then
  if [[ -d "$WARP_CACHE_PATH" ]]; then
    tar -czf "$WORK/warpcache.tgz" -C "$WARP_CACHE_PATH" .
    size=$(stat -c %s "$WORK/warpcache.tgz"); out=$(du -sb "$OUT" | cut -f1)
    if (( size <= 16 * 1024 * 1024 && out + size <= 64 * 1024 * 1024 )); then
      cp "$WORK/warpcache.tgz" "$OUT/"; echo "round_piece.sh: Warp's kernel cache brought back ($size bytes)"
    else
      echo "round_piece.sh: Warp's kernel cache ($size bytes) does not fit what the call returns beside $out bytes"
    fi
  else
    echo "round_piece.sh: no Warp kernel cache at $WARP_CACHE_PATH to bring back"
  fi
fi
