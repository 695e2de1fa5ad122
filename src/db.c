/* db.c - TEMPORARY placeholder; the real MariaDB layer replaces this file. */
#include "mlopsd/db.h"
#include <mysql.h>
const char *db_client_version(void) { return mysql_get_client_info(); }
