/* cfg.c - TEMPORARY: defaults only; the real loader replaces this file. */
#include "mlopsd/cfg.h"
#include <string.h>
#include <unistd.h>
void cfg_defaults(struct cfg *c) { memset(c, 0, sizeof(*c)); }
enum err_code cfg_load(struct cfg *c, const char *path, struct err *e)
{ (void)path; (void)e; cfg_defaults(c); return ERR_OK; }
void cfg_dump(const struct cfg *c, int fd) { (void)c; (void)fd; }
