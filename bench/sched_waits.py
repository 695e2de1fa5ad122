#!/usr/bin/env python3
"""bench/sched_waits.py - who waited for a core, and behind whom.

Reads `perf sched timehist` text (stdin) of a `perf sched record -a`
trace and prints, for the daemon's HTTP threads (libmicrohttpd's, named
MHD-*), wrk, MariaDB and the daemon's other threads, how often a thread,
once runnable, waited 1, 2 and 4 ms or more for a core ("sch delay"),
and for the HTTP threads' and wrk's waits of 1 ms or more which group
ran longest on that core meanwhile.  Used by bench/bench_serve.sh
(BENCH_SERVE_PERF=sched); docs/performance.md "Issue 16, fifth round: the
tail" explains why these waits are the tail of wrk's latency.
"""
import collections
import re
import sys

LINE = re.compile(r'^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.*?)\[(\d+)(?:/\d+)?\]'
                  r'\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)')


def group(comm):
    if comm.startswith('MHD-'):
        return 'http'
    if comm == 'wrk':
        return 'wrk'
    if comm.startswith('mariadbd') or comm.startswith('iou-wrk'):
        return 'mariadb'
    if comm.startswith('mlopsd') or comm in ('plog-tick', 'serving-watch'):
        return 'daemon'
    return 'other'


def main():
    rows = []
    for line in sys.stdin:
        m = LINE.match(line)
        if m:
            t, cpu, comm, tid, _wait, sd, rt = m.groups()
            rows.append((float(t), int(cpu), comm.strip(), tid, float(sd),
                         float(rt)))
    if not rows:
        print('sched: no events (perf sched timehist printed nothing)')
        return 1
    span = rows[-1][0] - rows[0][0]
    bycpu = collections.defaultdict(list)
    for r in rows:
        bycpu[r[1]].append(r)
    waits = collections.Counter()
    behind = {g: collections.Counter() for g in ('http', 'wrk')}
    for t, cpu, comm, tid, sd, rt in rows:
        g = group(comm)
        for ms in (1, 2, 4):
            if sd >= ms:
                waits[(g, ms)] += 1
        if sd < 1 or g not in behind:
            continue
        # the wait ended when this run began: [start - sd, start)
        a, b = t - (rt + sd) / 1e3, t - rt / 1e3
        held = collections.Counter()
        for x in bycpu[cpu]:
            xs, xe = x[0] - x[5] / 1e3, x[0]
            if xe > a and xs < b and x[3] != tid:
                held[group(x[2])] += min(xe, b) - max(xs, a)
        if held:
            behind[g][max(held, key=held.get)] += 1
    print('sched: %.1f s traced; waits for a core >= 1/2/4 ms:' % span)
    for g in ('http', 'wrk', 'mariadb', 'daemon'):
        print('  %-8s %5d %5d %5d' % (g, waits[(g, 1)], waits[(g, 2)],
                                      waits[(g, 4)]))
    for g in ('http', 'wrk'):
        b = ', '.join('%s %d' % kv for kv in behind[g].most_common())
        print('  %s waits >= 1 ms behind: %s' % (g, b or '-'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
