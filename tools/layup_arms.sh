#!/usr/bin/env bash
# Round 4's layup experiments on a computer with 2 GPUs, unattended (docs/llc_recipe.md, "Round 4"):
#   1. round 1: four equal-time arms, two per GPU, 4,096 envs each, then the evaluation of each (64 episodes);
#   2. the scaling check: train_llc.py under torchrun on one GPU alone (8,192 envs, 40 iterations);
#   3. round 2: the best arm of round 1 (highest accuracy, then lowest ball error) continued under torchrun on both
#      GPUs (8,192 envs each) from its policy file (actor, critic and normalisers), then evaluated.
# Usage (from the repository root, after the GPU packages are installed):
#   setsid nohup bash tools/layup_arms.sh OUTDIR T1 T2 > OUTDIR.log 2>&1 &
# T1, T2: seconds of training per arm in round 1 and in round 2. Progress: OUTDIR/status (one line per stage).
set -u
R=${1:?out dir}; T1=${2:-450}; T2=${3:-540}
N1=${ENVS:-4096}; N2=${LONG_ENVS:-16384}; NS=${SCALE_ENVS:-8192}  # smaller for a dry run on a CPU
X=${EXTRA:-}  # more train_llc.py flags for every run (a dry run: --warm-start-steps 5)
mkdir -p "$R"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
L=data/BallPlay-M/layup
say() { echo "$(date +%T) $*" >> "$R/status"; }
F="--env.reward.form components"
declare -A ARMS=(
  [A]="$F"
  [B]="$F --env.assist.mode adaptive"
  [C]="$F --env.assist.mode adaptive --env.physics.palm"
  [D]="$F --env.assist.mode adaptive --env.physics.palm --env.physics.ball-mass 7.2"
)
declare -A GPU=([A]=0 [B]=0 [C]=1 [D]=1)

say "warm-up (kernel compile)"
python train_llc.py --motion-dir $L --num-envs ${WARM_ENVS:-64} --iterations 1 --warm-start-steps 10 --run-dir "$R/warmup" \
  --overwrite $F --env.assist.mode adaptive --env.physics.palm > "$R/warmup.log" 2>&1
python -m skillmimic.evaluate --checkpoint "$R/warmup/policy.pt" --motion-dir $L --episodes 4 --horizon 10 \
  > "$R/warmup.eval.log" 2>&1

arm() {
  local name=$1
  CUDA_VISIBLE_DEVICES=${GPU[$name]} timeout -s TERM "$T1" python train_llc.py --motion-dir $L --num-envs $N1 \
    --iterations 100000 --checkpoint-every 50 --run-dir "$R/$name" --overwrite ${ARMS[$name]} $X > "$R/$name.log" 2>&1
  CUDA_VISIBLE_DEVICES=${GPU[$name]} python -m skillmimic.evaluate --checkpoint "$R/$name/policy.pt" \
    --motion-dir $L --episodes 64 --json-out "$R/$name.eval.json" > "$R/$name.eval.log" 2>&1
}
say "round 1: ${!ARMS[*]} for ${T1}s each"
for name in "${!ARMS[@]}"; do arm "$name" & done
wait
say "round 1 done"

best=$(python - "$R" <<'EOF'
import json, sys, pathlib
rows = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("?.eval.json")):
    r = json.loads(p.read_text())
    r = r[0] if isinstance(r, list) else r
    s = r["skills"][0] if "skills" in r else r
    rows.append((s["accuracy"], -s["ball_error_mm"], p.name[0]))
print(max(rows)[2] if rows else "A")
EOF
)
say "best of round 1: $best (${ARMS[$best]})"

say "scaling: torchrun 1 GPU x 8192 envs, 40 iterations"
CUDA_VISIBLE_DEVICES=0 torchrun --standalone --nproc_per_node=1 train_llc.py --motion-dir $L --num-envs $NS \
  --iterations 40 --checkpoint-every 1000 --warm-start-steps 0 --run-dir "$R/scale1" --overwrite ${ARMS[$best]} $X \
  > "$R/scale1.log" 2>&1

say "round 2: $best continued on 2 GPUs x 8192 envs for ${T2}s"
torchrun --standalone --nproc_per_node=2 train_llc.py --motion-dir $L --num-envs $N2 --iterations 100000 \
  --checkpoint-every 50 --keep-policies --init-from "$R/$best/policy.pt" --run-dir "$R/long" --overwrite \
  ${ARMS[$best]} $X > "$R/long.log" 2>&1 &
tr=$!
sleep "$T2"
pkill -TERM -P "$tr"  # the workers (not torchrun): they agree to stop after the iteration and save
wait "$tr"
say "round 2 trained"
python -m skillmimic.evaluate --checkpoint "$R/long/policy.pt" --motion-dir $L --episodes 64 \
  --json-out "$R/long.eval.json" > "$R/long.eval.log" 2>&1
say "DONE"
