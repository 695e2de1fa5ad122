#!/bin/sh
# check-size.sh [ROOT] - no source file or function of mlopsd too long to
# read in one sitting (issue 17).
#
# Fails (exit 1) when a src/*.c file has more than MAX_FILE_LINES (1500)
# lines or a function in it more than MAX_FUNC_LINES (150), and prints
# each offender as "file:line: name: N lines".  With -v it prints every
# function over 100 lines, longest first, also when none is over the cap.
#
# A function is what the project's layout makes of one (STYLE.md): its
# signature starts in column 0 and its body opens with "{" alone on a
# line and closes with "}" in column 0.  Its length is counted from the
# first line of the signature to the closing brace, as ctags' "end"
# field counts it.  awk only, so `make check-deps` runs it anywhere.
set -eu
VERBOSE=0
if [ "${1:-}" = "-v" ]; then VERBOSE=1; shift; fi
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT"
MAX_FILE_LINES=${MAX_FILE_LINES:-1500}
MAX_FUNC_LINES=${MAX_FUNC_LINES:-150}

awk -v maxf="$MAX_FILE_LINES" -v maxfn="$MAX_FUNC_LINES" -v verbose="$VERBOSE" '
  FNR == 1 { if (prev != "") endfile(prev); prev = FILENAME; sig = 0; infn = 0 }
  function endfile(f) {
    if (lines[f] > maxf) {
      printf "%s: %d lines (at most %d)\n", f, lines[f], maxf
      bad = 1
    }
  }
  { lines[FILENAME] = FNR }
  # a signature starts in column 0 with an identifier (not a comment,
  # a preprocessor line, a label or a closing brace)
  !infn && /^[A-Za-z_]/ && !/^[A-Za-z_][A-Za-z_0-9]*:/ {
    if (!sig) { sig = FNR; name = "" }
    if (name == "" && match($0, /[A-Za-z_][A-Za-z_0-9]*\(/))
      name = substr($0, RSTART, RLENGTH - 1)
    if ($0 ~ /;[ \t]*$/ || $0 ~ /[{=][ \t]*$/) sig = 0
    next
  }
  !infn && /^\{[ \t]*$/ && sig { infn = 1; next }
  !infn && !/^[ \t]/ { sig = 0 }
  infn && /^\}/ {
    n = FNR - sig + 1
    if (n > 100) printf "%d %s:%d: %s\n", n, FILENAME, sig, name > "/dev/stderr"
    if (n > maxfn) {
      printf "%s:%d: %s: %d lines (at most %d)\n", FILENAME, sig, name, n, maxfn
      bad = 1
    }
    infn = 0; sig = 0
  }
  END { if (prev != "") endfile(prev); exit bad }
' src/*.c 2>"${TMPDIR:-/tmp}/check-size.$$" && rc=0 || rc=$?
if [ "$VERBOSE" = 1 ]; then
  echo "functions over 100 lines:"
  sort -rn "${TMPDIR:-/tmp}/check-size.$$" | awk '{ print "  " $2 " " $3 " " $1 " lines" }'
fi
rm -f "${TMPDIR:-/tmp}/check-size.$$"
[ "$rc" = 0 ] && echo "check-size: no file over $MAX_FILE_LINES lines, no function over $MAX_FUNC_LINES"
exit "$rc"
