#!/bin/bash
# bench/plog_size.sh - bytes per logged prediction row (data + indexes, and
# on disk) and MariaDB's CPU per row, for the prediction log's table
# formats before and after migration 040 (issue 20; docs/operations.md
# "Disk").  Starts its own MariaDB (tests/mariadb.sh) in a temp dir, runs
# build/bench/bench_plog_size against it (see that file for what each
# column means), prints the load average next to the figures, and stops
# the server.  BENCH_PLOG_ROWS rows per variant (default 50000); arguments
# select the variants whose name contains any of them; BENCH_PLOG_REPS
# rounds of them, taking turns (default 1).
#
#   make build/bench/bench_plog_size && bench/plog_size.sh
#   (make bench runs it with the others)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BIN=$BUILD/bench/bench_plog_size
[ -x "$BIN" ] || { echo "plog_size: $BIN not built (make bench)" >&2; exit 1; }
. bench/lib.sh
bench_tmp bench_plog_size
bench_db_start plog_size
bench_loaded env MLOPSD_SRC="$(pwd)" "$BIN" "$@"
