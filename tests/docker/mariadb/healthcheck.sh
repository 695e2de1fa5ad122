#!/bin/sh
# healthcheck.sh [--connect] [--innodb_initialized] - the stand-in's health
# check, with the two checks of the official image's script that
# docker/docker-compose.yml asks for:
#   --connect             a client connects over TCP (the server accepts
#                         network connections, not just its socket)
#   --innodb_initialized  InnoDB is up (the storage engine reports YES or
#                         DEFAULT)
# Each check runs in the order given; exit 0 if all pass, 1 at the first
# that fails (its reason on stderr).  Credentials: the 'healthcheck' user
# written by docker-entrypoint.sh into /var/lib/mysql/.my-healthcheck.cnf.
set -u
cnf=/var/lib/mysql/.my-healthcheck.cnf
if [ ! -r "$cnf" ]; then
  echo "healthcheck.sh: $cnf missing (first start not finished)" >&2
  exit 1
fi
[ $# -gt 0 ] || set -- --connect
sql() { mariadb --defaults-extra-file="$cnf" --connect-timeout=3 -sN -e "$1"; }
for check in "$@"; do
  case "$check" in
    --connect)
      if ! sql 'SELECT 1' >/dev/null; then
        echo "healthcheck.sh: --connect: no TCP connection to 127.0.0.1:3306" >&2
        exit 1
      fi ;;
    --innodb_initialized)
      v=$(sql "SELECT support FROM information_schema.ENGINES WHERE engine = 'InnoDB'") || v=""
      case "$v" in
        YES|DEFAULT) ;;
        *) echo "healthcheck.sh: --innodb_initialized: InnoDB support '$v'" >&2
           exit 1 ;;
      esac ;;
    *)
      echo "healthcheck.sh: unknown check '$check'" >&2
      exit 1 ;;
  esac
done
exit 0
