#!/usr/bin/env bash
# Makes sure Debian's PostgreSQL server and client programs are installed (tests start their own servers).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v psql >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "pgrelay: the tests need Debian's PostgreSQL: run 'sudo apt-get install -y postgresql'" >&2
  exit 1
fi
echo "pgrelay: installing Debian's postgresql package (server binaries for the tests)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql postgresql-contrib >/dev/null
# Debian starts a cluster on install; the tests start their own, so stop it to free port 5432.
if command -v pg_ctlcluster >/dev/null; then
  for cluster in /etc/postgresql/*/*; do
    [ -d "$cluster" ] || continue
    pg_ctlcluster "$(basename "$(dirname "$cluster")")" "$(basename "$cluster")" stop 2>/dev/null || true
  done
fi
