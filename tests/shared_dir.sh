#!/bin/sh
# tests/shared_dir.sh - print the shared/ folder with the course data
# (data/credit/...) that tests and benches read.
#
# CI lays out the clone with shared/ beside it (../shared); a git worktree
# of that clone finds it beside the main checkout (the parent of the
# common .git directory).  MLOPSD_SHARED, when set, wins.  Exits 1, with
# the places tried on stderr, when none has data/.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${MLOPSD_SHARED:-}" ]; then echo "$MLOPSD_SHARED"; exit 0; fi
tried=""
for d in "$src/../shared" \
         "$(git -C "$src" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared"; do
  tried="$tried $d"
  if [ -d "$d/data" ]; then (cd "$d" && pwd); exit 0; fi
done
echo "shared_dir.sh: no shared/data at:$tried (set MLOPSD_SHARED)" >&2
exit 1
