/* fsx.c - capped file read, atomic file replace, the one name check.
 *
 * See fsx.h for the contracts.  Everything here is plain POSIX I/O with
 * EINTR retried; no state is kept between calls.
 */
#include "mlopsd/fsx.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* First buffer for a stream whose size fstat cannot tell. */
#define STREAM_FIRST 4096

/* ---- capped read ------------------------------------------------------ */

static void wipe_free(char *p, size_t n, int secret)
{
  if (p && secret)
    explicit_bzero(p, n);
  free(p);
}

/* Grow buf (holding n bytes, capacity *bcap) to ncap.  A secret is copied
 * by hand so that realloc never leaves a copy behind in freed memory. */
static char *grow(char *buf, size_t n, size_t *bcap, size_t ncap, int secret)
{
  char *nb;
  if (!secret) {
    nb = realloc(buf, ncap);
  } else {
    nb = malloc(ncap);
    if (nb && buf) {
      memcpy(nb, buf, n);
      wipe_free(buf, *bcap, 1);
    }
  }
  if (nb)
    *bcap = ncap;
  return nb;
}

enum err_code fsx_read(const char *path, size_t cap, unsigned flags,
                       char **out, size_t *len, struct err *e)
{
  int secret = (flags & FSX_SECRET) != 0;
  int use_stdin = (flags & FSX_STDIN) && strcmp(path, "-") == 0;
  *out = NULL;
  if (len)
    *len = 0;
  if (cap >= SIZE_MAX - 1)
    cap = SIZE_MAX - 2; /* room for the extra byte and the NUL */
  /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer before
   * fstat could tell it is not a regular file; a regular file's reads
   * ignore the flag. */
  int oflags = O_RDONLY | O_CLOEXEC;
  if (!(flags & FSX_ANY_FILE))
    oflags |= O_NONBLOCK;
  int fd = use_stdin ? STDIN_FILENO : open(path, oflags);
  if (fd < 0)
    return err_set(e, errno == ENOENT || errno == ENOTDIR ? ERR_NOTFOUND
                                                          : ERR_IO,
                   "cannot open %s: %s", path, strerror(errno));
  enum err_code rc = ERR_OK;
  char *buf = NULL;
  size_t n = 0, bcap = 0;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc = err_set(e, ERR_IO, "cannot read %s: %s", path, strerror(errno));
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    rc = err_set(e, ERR_IO, "%s is a directory", path);
    goto out;
  }
  int regular = S_ISREG(st.st_mode);
  if (!regular && !use_stdin && !(flags & FSX_ANY_FILE)) {
    rc = err_set(e, ERR_IO, "%s is not a regular file", path);
    goto out;
  }
  if (regular && (unsigned long long)st.st_size > cap) {
    rc = err_set(e, ERR_IO, "%s is larger than %zu bytes", path, cap);
    goto out;
  }
  /* A regular file is read in one go plus one byte to see its end (or
   * that it grew); a stream doubles from STREAM_FIRST.  Either way the
   * buffer never exceeds cap + 2: content, one byte over, the NUL. */
  size_t want = regular ? (size_t)st.st_size + 2 : STREAM_FIRST;
  if (want > cap + 2)
    want = cap + 2;
  buf = grow(NULL, 0, &bcap, want, secret);
  if (!buf)
    goto oom;
  for (;;) {
    if (n + 1 == bcap) {
      if (n > cap)
        break;
      size_t ncap = bcap > (cap + 2) / 2 ? cap + 2 : bcap * 2;
      char *nb = grow(buf, n, &bcap, ncap, secret);
      if (!nb)
        goto oom;
      buf = nb;
    }
    ssize_t r = read(fd, buf + n, bcap - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = err_set(e, ERR_IO, "cannot read %s: %s", path, strerror(errno));
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > cap) {
    rc = err_set(e, ERR_IO, "%s is larger than %zu bytes", path, cap);
    goto out;
  }
  buf[n] = '\0';
  if ((flags & FSX_NO_NUL) && memchr(buf, '\0', n)) {
    rc = err_set(e, ERR_PARSE, "%s holds a NUL byte", path);
    goto out;
  }
  *out = buf;
  if (len)
    *len = n;
  buf = NULL;
  goto out;
oom:
  rc = err_set(e, ERR_NOMEM, "out of memory reading %s", path);
out:
  wipe_free(buf, bcap, secret);
  if (!use_stdin)
    close(fd);
  return rc;
}

/* ---- atomic replace --------------------------------------------------- */

int fsx_fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

enum err_code fsx_read_json(const char *path, size_t cap, cJSON **out,
                            struct err *e)
{
  *out = NULL;
  char *buf;
  size_t len;
  enum err_code rc = fsx_read(path, cap, 0, &buf, &len, e);
  if (rc)
    return rc;
  const char *end = NULL;
  *out = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
  size_t off = end && end >= buf ? (size_t)(end - buf) : 0;
  free(buf);
  if (!*out)
    return err_set(e, ERR_PARSE, "%s: invalid JSON at byte %zu of %zu "
                   "(corrupt or truncated)", path, off, len);
  return ERR_OK;
}

enum err_code fsx_write_atomic(const char *path, const void *data,
                               size_t len, struct err *e)
{
  char dir[PATH_MAX], tmp[PATH_MAX];
  size_t plen = strlen(path);
  if (plen == 0 || plen >= sizeof(dir))
    return err_set(e, ERR_INVAL, "write %.200s: path empty or too long",
                   path);
  memcpy(dir, path, plen + 1);
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : dir;
  int w = slash ? snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp-XXXXXX",
                           (int)(slash - dir), dir, base)
                : snprintf(tmp, sizeof(tmp), ".%s.tmp-XXXXXX", base);
  if (w < 0 || (size_t)w >= sizeof(tmp))
    return err_set(e, ERR_INVAL, "write %.200s: path too long", path);
  if (!slash)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return err_set(e, ERR_IO, "create temp for %s: %s", path,
                   strerror(errno));
  int saved = 0;
  if (write_all(fd, data, len) || fchmod(fd, 0644) < 0 || fsync(fd) < 0)
    saved = errno;
  if (close(fd) < 0 && !saved)
    saved = errno;
  if (!saved && rename(tmp, path) < 0)
    saved = errno;
  if (saved) {
    unlink(tmp);
    return err_set(e, ERR_IO, "write %s: %s", path, strerror(saved));
  }
  /* The rename is done; a failed directory sync cannot be undone and the
   * data is in place for every reader, so it is not an error here. */
  (void)fsx_fsync_dir(dir);
  return ERR_OK;
}

/* ---- names ------------------------------------------------------------ */

int fsx_name_valid(const char *s)
{
  if (!s || !*s)
    return 0;
  size_t n = strlen(s);
  if (n > FSX_NAME_MAX)
    return 0;
  if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
    return 0;
  for (size_t i = 1; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return strstr(s, "..") == NULL;
}
