#!/usr/bin/env bash
# Equal-time arms, one per GPU, unattended (docs/llc_recipe.md, rounds 5 to 7): each arm continues INIT (a policy
# file with its critic) at 8,192 envs on its own GPU for T seconds, then is evaluated (64 episodes, no assist; each
# skill also per clip).
# Usage (from the repository root, after the GPU packages are installed):
#   setsid nohup bash tools/layup_continue.sh OUTDIR T INIT [ARMS] > OUTDIR.log 2>&1 &
# ARMS: a file of lines `NAME FLAGS...` (train_llc.py flags of that arm) and one `COMMON FLAGS...` line for every
# arm; '#' starts a comment (default: tools/arms/round5.txt, what round 5 ran). ONLY="A B": run these arms of
# the file alone (fewer GPUs than arms). An arm whose flags hold its own --init-from starts from that file; INIT
# "-" passes none (those arms start with the warm start). Arms go to the GPUs in turn, or where their flags begin
# with `@gpus=LIST` (e.g. @gpus=3, @gpus=2,3): on those GPUs, under torchrun with one process (rank) a GPU when
# LIST names several (its --num-envs still counts all the ranks' environments, so N=1 and N=2 arms of equal
# --num-envs are equal samples per iteration). An arm whose flags (after any @gpus) begin with `offline` runs
# `python -m skillmimic.offline_distill` with its flags alone (not COMMON's) instead of train_llc.py, writing
# OUTDIR/NAME/policy.pt; at T it ends the epoch it is in and writes the student. One whose flags begin with `hlc`
# trains a high-level controller, `python train_hlc.py` with its flags alone (e.g. `HT hlc --task throwing --llc
# results/skills13/YH_policy.pt`; INIT is not its), evaluated by `python -m skillmimic.evaluate_task` (64 episodes);
# with CONTINUE it resumes DIR/checkpoint_NAME.pt (its run's own settings) where that file is; OUTDIR/hlc_arms.txt
# names these arms. MOTION=DIR trains and evaluates on other clips than the layup's (MOTION=data/BallPlay-M: all 19
# skills). Progress: OUTDIR/status; tools/round_files.sh copies the round's files off while it runs. CONTINUE=DIR: an
# arm with a file DIR/policy_NAME.pt (tools/round_files.sh's name) starts from it instead of its --init-from or INIT (a
# later piece of a round, from the files the last piece brought back); a train_llc.py arm of such a file whose flags (or
# COMMON's) hold --env.mass-curriculum.start gets `--env.mass-curriculum.first-step N` in place of any its flags name, N
# the step of its curriculum the file records (python -m skillmimic.policy_info FILE mass_curriculum_step), so that its
# ball goes on getting lighter instead of starting heavy again every piece; a file that records none (written before the
# record) leaves the arm's flags as they are, so the first piece after such a file names the step in the arm's line (the
# line is in OUTDIR/status). KEPT_EVAL="DIR ...": an arm that kept policy files (its flags hold --keep-policies: one a
# checkpoint, --checkpoint-every) also has each evaluated on each DIR's clips on the CPU (plain MuJoCo, one process a
# DIR, while the GPU evaluates its last file), OUTDIR/NAME.kept_BASENAME.json: successive files of one run can read far
# apart (docs/llc_recipe.md, round 13), so a piece reads several. On a lent machine whose working copy is refreshed at
# every call, start it from a copy of the tree outside that folder (cp -a skillmimic tools data configs train_llc.py
# /root/work; cd /root/work): files put into the working copy for the run (policy files it starts from) are gone at the
# next call.
set -u
R=${1:?out dir}; T=${2:-900}; INIT=${3:?policy file to continue}; ARMS_FILE=${4:-tools/arms/round5.txt}
N=${ENVS:-8192}  # smaller for a dry run on a CPU
X=${EXTRA:-}  # more train_llc.py flags for every run (a dry run: --warm-start-steps 5)
XO=${OFFLINE_EXTRA:-}  # more offline_distill flags for every offline arm (a dry run: --num-envs 16 --epochs 2)
mkdir -p "$R"
export PYTHONUNBUFFERED=1
L=${MOTION:-data/BallPlay-M/layup}
say() { echo "$(date +%T) $*" >> "$R/status"; }
declare -A ARMS=(); NAMES=(); COMMON=""
while read -r name flags; do
  case "$name" in ""|\#*) continue ;; COMMON) COMMON=$flags; continue ;; esac
  [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]] && continue
  ARMS[$name]=$flags; NAMES+=("$name")
done < "$ARMS_FILE"
cp "$ARMS_FILE" "$R/arms.txt"
GPUS=${NUM_GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}; GPUS=$(( GPUS > 0 ? GPUS : 1 ))
# The arms share the computer's cores: each gets its part for torch's CPU threads (a thread per core in each of
# several processes stalls them all: skillmimic.device.cpu_threads).
CORES=$(nproc); export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( CORES / GPUS > 0 ? CORES / GPUS : 1 ))}

say "warm-up (kernel compile)"
python train_llc.py --motion-dir $L --num-envs ${WARM_ENVS:-64} --iterations 1 --warm-start-steps 10 --run-dir "$R/warmup" \
  --overwrite $COMMON > "$R/warmup.log" 2>&1

hlc_arm() {  # a high-level controller (train_hlc.py): its own flags alone, continued from CONTINUE's checkpoint;
  # called by arm(), whose `launch` (python, or torchrun over several GPUs) it runs under
  local name=$1 gpu=$2 flags=$3 from=()
  echo "$name" >> "$R/hlc_arms.txt"  # tools/round_files.sh and round_piece.sh bring back and keep its checkpoint
  if [[ -n ${CONTINUE:-} && -f "$CONTINUE/checkpoint_$name.pt" ]]; then  # the run goes on with its own settings
    from=(--resume "$CONTINUE/checkpoint_$name.pt"); say "$name resumes $CONTINUE/checkpoint_$name.pt"
  fi
  # SIGTERM at T: the controller ends its iteration and writes its checkpoint and policy
  CUDA_VISIBLE_DEVICES=$gpu timeout -s TERM "$T" "${launch[@]}" train_hlc.py $flags "${from[@]}" --iterations 100000 \
    --run-dir "$R/$name" --overwrite > "$R/$name.log" 2>&1
  say "$name trained"
  CUDA_VISIBLE_DEVICES=${gpu%%,*} python -m skillmimic.evaluate_task --checkpoint "$R/$name/policy.pt" \
    --episodes ${EPISODES:-64} --json-out "$R/$name.eval.json" > "$R/$name.eval.log" 2>&1
  say "$name evaluated"
}
arm() {
  local name=$1 gpu=$2 init=() flags=${ARMS[$name]} launch=(python)
  if [[ "$flags" == @gpus=* ]]; then
    gpu=${flags%% *}; gpu=${gpu#@gpus=}
    [[ "$flags" == *" "* ]] && flags=${flags#* } || flags=""  # an arm of no flags of its own
  fi
  local ranks; ranks=$(tr ',' '\n' <<< "$gpu" | wc -l)
  (( ranks > 1 )) && launch=(torchrun --standalone --nproc_per_node="$ranks")
  if [[ "$flags" == hlc* ]]; then hlc_arm "$name" "$gpu" "${flags#hlc}"; return; fi
  [[ "$INIT" != "-" && " $flags " != *" --init-from "* ]] && init=(--init-from "$INIT")
  if [[ -n ${CONTINUE:-} && -f "$CONTINUE/policy_$name.pt" ]]; then  # a later piece: the last one's file
    flags=$(sed -E 's/(^| )--init-from [^ ]+/ /' <<< "$flags"); init=(--init-from "$CONTINUE/policy_$name.pt")
    local all=" $COMMON $flags " own='(^| )--env\.mass-curriculum\.first-step[ =][^ ]+'
    if [[ "$flags" != offline* && "$all" =~ \ --env\.mass-curriculum\.start[\ =] ]]; then  # its curriculum goes on
      local step
      if ! step=$(python -m skillmimic.policy_info "${init[1]}" mass_curriculum_step 2>> "$R/status"); then
        say "$name: ${init[1]} unreadable (above): its mass curriculum starts where its flags say"
      elif (( step > 0 )); then  # the file's record is later than any step the flags name (its run began there)
        flags="$(sed -E "s/$own/ /g" <<< "$flags") --env.mass-curriculum.first-step $step"
        say "$name continues its mass curriculum at step $step"
      elif [[ "$all" =~ $own ]]; then
        say "$name: ${init[1]} records no mass curriculum step: its curriculum starts at the step its flags name"
      else
        say "$name: ${init[1]} records no mass curriculum step: its curriculum starts again"
      fi
    fi
  fi
  if [[ "$flags" == offline* ]]; then  # offline distillation (skillmimic.offline_distill): its own flags alone
    flags=${flags#offline}
    # SIGTERM at T: the fit ends its epoch and writes the student
    CUDA_VISIBLE_DEVICES=$gpu timeout -s TERM "$T" python -m skillmimic.offline_distill --motion-dir $L \
      "${init[@]}" --out "$R/$name/policy.pt" $flags $XO > "$R/$name.log" 2>&1
  else
    # SIGTERM reaches torchrun, which passes it on: the ranks stop at the same iteration and save together
    CUDA_VISIBLE_DEVICES=$gpu timeout -s TERM "$T" "${launch[@]}" train_llc.py --motion-dir $L --num-envs $N \
      --iterations 100000 --checkpoint-every 50 "${init[@]}" --run-dir "$R/$name" --overwrite \
      $COMMON $flags $X > "$R/$name.log" 2>&1
  fi
  say "$name trained"
  local kept=() dir
  if [[ -n ${KEPT_EVAL:-} && -d "$R/$name/policies" ]]; then  # the arm's kept files, on the CPU, beside the GPU's
    for dir in $KEPT_EVAL; do
      OMP_NUM_THREADS=1 python -m skillmimic.evaluate --checkpoint "$R/$name/policies" --motion-dir "$dir" \
        --episodes ${EPISODES:-64} --device cpu --backend mujoco --json-out "$R/$name.kept_$(basename "$dir").json" \
        > "$R/$name.kept_$(basename "$dir").log" 2>&1 &
      kept+=($!)
    done
  fi
  CUDA_VISIBLE_DEVICES=${gpu%%,*} python -m skillmimic.evaluate --checkpoint "$R/$name/policy.pt" \
    --motion-dir $L --episodes ${EPISODES:-64} --per-clip --json-out "$R/$name.eval.json" > "$R/$name.eval.log" 2>&1
  say "$name evaluated"
  if (( ${#kept[@]} )); then wait "${kept[@]}"; say "$name's kept files evaluated (CPU)"; fi
}
say "arms ${NAMES[*]} for ${T}s each on $GPUS GPUs"
i=0
for name in "${NAMES[@]}"; do arm "$name" $(( i % GPUS )) & i=$(( i + 1 )); done
wait
say "DONE"
