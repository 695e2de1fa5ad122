/* bench_util.h - what the C benches share: the clocks (wall time, this
 * process's CPU time and another process's, mariadbd's, from /proc), the
 * MariaDB server they were given (tests/mariadb.sh's environment) and its
 * process id.  Header only, static functions; any thread.
 */
#ifndef MLOPSD_BENCH_UTIL_H
#define MLOPSD_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/db.h"

/* Monotonic seconds. */
static inline double bench_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process: the client side's share. */
static inline double bench_cpu_s(void)
{
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds (user + system) of process pid from /proc/PID/stat; -1
 * when pid <= 0 or it is not on this machine. */
static inline double bench_proc_cpu_s(pid_t pid)
{
  char path[64], buf[1024];
  if (pid <= 0)
    return -1;
  snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the name may hold blanks */
  unsigned long ut = 0, st = 0;
  /* fields after the name: state(3) ... utime(14) stime(15) */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu "
                          "%lu",
                   &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Fills *o for the server named by MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD
 * (the strings are borrowed from the environment; no password is ""): a
 * pool of size connections, connect_timeout_s seconds to connect, every
 * other field zero.  Returns 0, or -1 when HOST, PORT or USER is unset
 * (no server given: the caller says so and skips or starts one). */
static inline int bench_db_opts(struct db_opts *o, int size,
                                int connect_timeout_s)
{
  const char *host = getenv("MLOPSD_DATABASE_HOST");
  const char *port = getenv("MLOPSD_DATABASE_PORT");
  const char *user = getenv("MLOPSD_DATABASE_USER");
  const char *pass = getenv("MLOPSD_DATABASE_PASSWORD");
  memset(o, 0, sizeof(*o));
  if (!host || !port || !user)
    return -1;
  o->host = host;
  o->port = atoi(port);
  /* a unix socket instead of TCP when set (bench/lib.sh BENCH_DB_SOCKET) */
  o->socket = getenv("MLOPSD_DATABASE_SOCKET");
  if (o->socket && !o->socket[0])
    o->socket = NULL;
  o->user = user;
  o->password = pass ? pass : "";
  o->size = size;
  o->connect_timeout_s = connect_timeout_s;
  return 0;
}

/* The process id in the pid file at path (mariadbd's @@pid_file, for
 * bench_proc_cpu_s); 0 when path is empty, unreadable or holds no number. */
static inline pid_t bench_pidfile_pid(const char *path)
{
  FILE *f = path[0] ? fopen(path, "r") : NULL;
  long pid = 0;
  if (f) {
    if (fscanf(f, "%ld", &pid) != 1)
      pid = 0;
    fclose(f);
  }
  return (pid_t)pid;
}

#endif
