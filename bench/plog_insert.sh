#!/bin/bash
# bench/plog_insert.sh - CPU per logged row (the daemon's flusher and
# MariaDB) for three ways to store the prediction log's rows: multi-row
# INSERT (what plog does), array binding (STMT_ATTR_ARRAY_SIZE) and LOAD
# DATA LOCAL INFILE from memory (issue 16; docs/performance.md).  Starts its
# own MariaDB (tests/mariadb.sh) in a temp dir, runs
# build/bench/bench_plog_insert against it (see that file), prints the load
# average next to the figures and stops the server.  BENCH_PLOG_ROWS rows
# per run (default 50000), BENCH_PLOG_REPS runs per way (default 3).
#
#   make build/bench/bench_plog_insert && bench/plog_insert.sh
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BIN=$BUILD/bench/bench_plog_insert
[ -x "$BIN" ] || { echo "plog_insert: $BIN not built (make bench)" >&2; exit 1; }
MLOPSD_SHARED=${MLOPSD_SHARED:-$(tests/shared_dir.sh)}
export MLOPSD_SHARED
. bench/lib.sh
bench_tmp bench_plog_insert
bench_db_start plog_insert
bench_loaded env MLOPSD_SRC="$(pwd)" "$BIN"
