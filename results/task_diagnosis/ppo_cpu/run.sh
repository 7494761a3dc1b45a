#!/bin/bash
# PPO on throwing (2.9 m) with and without train_hlc.py --sticky 0.99, on round 14's YH, this project's 2-core CPU
# (README.md here, section 5). Run from the repository root: bash results/task_diagnosis/ppo_cpu/run.sh
# About 8 minutes a 150-iteration run, 3 a 50-iteration one (64 environments, 1,800-2,000 control steps/s).
set -e
export OMP_NUM_THREADS=1
L=results/skills14/YH_policy.pt
O=results/task_diagnosis/ppo_cpu
R=${RUNS_DIR:-runs/ppo_cpu}
run() {  # NAME ITERATIONS FLAGS...
  local name=$1 iterations=$2; shift 2
  python train_hlc.py --task throwing --throwing.height 2.9 --llc $L --env.backend mujoco --device cpu --num-envs 64 \
    --iterations $iterations --run-dir $R/$name "$@"
  cp $R/$name/progress.csv $O/${name}_progress.csv
}
run sticky099_seed1 150 --sticky 0.99 --seed 1
run plain_seed1 150 --sticky 0 --seed 1
run sticky099_seed2 50 --sticky 0.99 --seed 2
run plain_seed2 50 --sticky 0 --seed 2
cp $R/sticky099_seed1/policy.pt $O/sticky099_seed1_policy.pt
for name in sticky099_seed1 plain_seed1; do  # the most likely skill, 64 episodes, as evaluate_task plays
  python -m skillmimic.evaluate_task --checkpoint $R/$name/policy.pt --llc $L --episodes 64 --device cpu \
    --backend mujoco --seed 0 --json-out $O/${name}_eval.json
  PYTHONPATH=. python tools/scripted_task.py --hlc $R/$name/policy.pt --llc $L --episodes 64 --seed 0 \
    --json-out $O/${name}_trace.json
done
