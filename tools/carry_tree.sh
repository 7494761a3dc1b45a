#!/usr/bin/env bash
# The working tree a lent GPU machine's call carries (at most 64 MiB with the carry folders), in three states:
#   bash tools/carry_tree.sh slim   # the stash calls: docs, results, data and skillmimic/assets/*.pt left out
#   bash tools/carry_tree.sh data   # the piece's call (tools/round_piece.sh copies data): data carried again
#   bash tools/carry_tree.sh full   # afterwards: the index and .gitignore as committed
# A call carries the tracked files and the untracked ones git does not ignore, so `slim` untracks the four (git rm
# --cached: the files stay on disk) and lists them in .gitignore (not .git/info/exclude, which worktrees share). It
# refuses, in one line, an index with staged changes (`full` resets the index to HEAD and would lose them) or a
# .gitignore with changes of its own (`full` checks it out as committed).
set -eu
cd "$(git rev-parse --show-toplevel)"
LEFT_OUT=(docs results data 'skillmimic/assets/*.pt')
case ${1:-} in
  slim)
    git diff --cached --quiet || { echo "carry_tree.sh: the index has staged changes: commit or unstage them" >&2
      exit 2; }
    git diff --quiet -- .gitignore || { echo "carry_tree.sh: .gitignore has changes of its own: commit them" >&2
      exit 2; }
    git rm -r -q --cached "${LEFT_OUT[@]}"
    printf '/docs/\n/results/\n/skillmimic/assets/*.pt\n/data/*\n' >> .gitignore ;;
  data)
    git diff --quiet -- .gitignore && { echo "carry_tree.sh: run 'slim' first" >&2; exit 2; }
    git reset -q -- data ;;
  full)
    git checkout -q -- .gitignore && git reset -q ;;
  *) echo "carry_tree.sh: say slim, data or full" >&2; exit 2 ;;
esac
echo "carry_tree.sh: $1: $(git ls-files | wc -l) files tracked"
