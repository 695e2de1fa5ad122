#!/bin/bash
# test_reload_warn.sh - SIGHUP with a changed reloadable key the running
# daemon cannot apply (scheduler.tick_ms, server.default_model): one WARN
# line per such key, logging.level is applied, the daemon keeps running
# and stops with 0.  Real daemon ($MLOPSD_BIN), database it_reload_warn.
. "$(dirname "$0")/lib_fault.sh"
lf_init reload_warn

section setup
lf_fast_spec
lf_config
if lf_db_prepare; then ok setup; else bad setup; lf_done; exit 1; fi
lf_start
lf_wait_up 30 && ok up || bad up

section SIGHUP
sed -i -e 's/^  tick_ms: 200$/  tick_ms: 300/' \
  -e "s/^  default_model: $MODEL\$/  default_model: other_model/" \
  -e 's/^  level: .*/  level: debug/' "$T/mlopsd.yaml"
kill -HUP "$DPID"
for _ in $(seq 1 50); do
  grep -q 'reloaded: logging' "$T/daemon.log" && break; sleep 0.1
done
has reloaded "$T/daemon.log" "reloaded: logging level and format applied"
has warn_tick_ms "$T/daemon.log" \
  "key scheduler.tick_ms changed: takes effect after restart"
has warn_default_model "$T/daemon.log" \
  "key server.default_model changed: takes effect after restart"
hasnt no_warn_unchanged "$T/daemon.log" "key models.specs_dir changed"
check still_running kill -0 "$DPID"
lf_term
eq exit_code_0 "$DRC" 0
lf_done
