#!/bin/bash
# bench/report.sh [SECONDS] - run the serving bench once and print the
# README's headline table (the "mlopsd, measured here" column) from it.
#
# Runs bench/bench_serve.sh (its own MariaDB, daemon and wrk on this
# machine; SECONDS per load run, default 10) with the runs the table
# needs: startup (10 starts), predict single at 16 and 64 connections and
# batches of 64 at 16, and prints, from that one run:
#
#   - the Markdown table for README.md, with the command, date, commit,
#     CPU count and load average under it;
#   - the bench's own lines (its table, the log-table check) below.
#
# The course-stack column is quoted, not measured here: the figures of the
# course's Python stack (Airflow + MLflow + BentoML) as the README has
# always given them; nothing in this repository runs that stack.
#
# The machine is shared (other builds, tests): run it when the load
# average is low and compare figures of one run only.  Exit status: the
# bench's (1 when a row of the prediction log was lost or doubled).
#
#   bench/report.sh            # about 2 minutes
#   make bench-report          # the same, after building
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
cd "$SRC" || exit 1
DUR=${1:-10}
out=$(mktemp /tmp/mlopsd-report.XXXXXX)
figs=$(mktemp /tmp/mlopsd-report-figs.XXXXXX)
trap 'rm -f "$out" "$figs"' EXIT

BENCH_SERVE_RUNS="startup single16 single64 batch16" \
BENCH_SERVE_FIGURES=$figs bash bench/bench_serve.sh "$DUR" >"$out" 2>&1
rc=$?

# fig RUN KEY: the value of KEY on the line of RUN
fig() { awk -v r="run=$1" -v k="$2=" '$1 == r {
  for (i = 2; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' "$figs"; }
thousands() { printf '%.0f' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

starts=$(grep -c '^start=' "$figs")
if [ "$rc" != 0 ] || [ "$starts" = 0 ] || [ -z "$(fig single16 rps)" ]; then
  echo "bench/report.sh: the bench did not finish (exit $rc):" >&2
  cat "$out" >&2
  exit 1
fi
ready=$(awk -F'ready_s=' '/^start=/ { split($2, a, " "); print a[1] }' "$figs" |
  sort -n | awk '{ v[NR] = $1 } END { printf "%.2f-%.2f s (median %.2f, %d starts)",
    v[1], v[NR], v[int((NR + 1) / 2)], NR }')
idle=$(awk -F'idle_rss_mb=' '/^start=/ { print $2 + 0 }' "$figs" | sort -n |
  awk '{ v[NR] = $1 } END { print (v[1] == v[NR]) ? v[1] : v[1] "-" v[NR] }')
# RSS after the load runs: the daemon's at the end of the last run, peak
rss_end=$(fig batch16 rss_mb); peak=$(fig batch16 peak_mb)

echo "| | course stack (Python), quoted | mlopsd, \`bench/report.sh\` |"
echo "|---|---|---|"
echo "| predictions/s, every one logged to MariaDB | 23-86 | **$(thousands "$(fig single16 rps)")** (16 connections), $(thousands "$(fig single64 rps)") (64); batches of 64: $(thousands "$(fig batch16 items_s)") items/s |"
echo "| p99 latency, single prediction, 16 connections | - | $(fig single16 p99_ms) ms |"
echo "| memory (RSS) | 170-370 MB | **$idle MB** idle with the model loaded, **$rss_end MB** after the load runs (peak $peak MB) |"
echo "| start to serving (model loaded, MariaDB connected) | 2.5 s | **$ready** |"
echo "| processes | Airflow scheduler + webserver, MLflow, BentoML | one (\`mlopsd serve\`) |"
echo
echo "bench/report.sh $DUR on $(date -u +%Y-%m-%d) at $(git rev-parse --short HEAD 2>/dev/null || echo '?'):" \
  "$(nproc) CPUs shared by wrk, the daemon and MariaDB, load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "--- bench/bench_serve.sh output"
cat "$out"
exit "$rc"
