/* task_model.c - the `model` field of the model task types, read one way
 * (task_model_int.h). */
#include "task_model_int.h"

#include <stdlib.h>
#include <string.h>

#include "mlopsd/fsx.h"
#include "mlopsd/tmpl.h"

static enum err_code not_a_name(const char *s, struct err *e)
{
  return err_set(e, ERR_INVAL, "field 'model': '%.130s' is not a valid "
                 "model name", s);
}

enum err_code task_model_check(const struct task_ctx *t, struct err *e)
{
  char buf[64];
  const char *m;
  enum err_code rc = task_field_text(t, "model", buf, sizeof(buf), &m, e);
  if (rc)
    return rc;
  if (m && !strstr(m, "{{") && !fsx_name_valid(m))
    return not_a_name(m, e);
  return ERR_OK;
}

enum err_code task_model_name(const struct task_ctx *t, char **out,
                              struct err *e)
{
  char buf[64];
  const char *raw;
  *out = NULL;
  enum err_code rc = task_field_text(t, "model", buf, sizeof(buf), &raw, e);
  if (rc)
    return rc;
  if (!raw || !*raw)
    return err_set(e, ERR_INVAL, "field 'model' is required");
  if ((rc = task_render(t, "model", raw, TMPL_PLAIN, out, NULL, e)))
    return rc;
  if (!fsx_name_valid(*out)) {
    rc = not_a_name(*out, e);
    FREE_NULL(*out);
  }
  return rc;
}

const struct cfg *task_model_cfg(const struct task_ctx *t,
                                 struct cfg *defaults)
{
  if (t->cfg)
    return t->cfg;
  cfg_defaults(defaults);
  return defaults;
}
