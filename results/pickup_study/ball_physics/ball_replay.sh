export OMP_NUM_THREADS=1 PYTHONPATH=.   # run from the repository root
D=data/BallPlay-M/pick_40
for c in 001 004 007 010; do
  f=$(ls $D/001_008*_$c.pt)
  for lost in 0.15 0.5; do
    for set in "" "--ball-restitution 0.82 --ball-rolling 0.4" "--ball-restitution 0.82" "--ball-rolling 0.4" "--ball-restitution 0.86 --ball-rolling 0.5" "--ball-restitution 0.80 --ball-rolling 0.3"; do
      echo "== $c lost $lost set [$set]"
      python tools/ball_replay.py --motion-dir $f --variants base --starts 0 --lost $lost $set 2>&1 | grep "| base"
    done
  done
done
