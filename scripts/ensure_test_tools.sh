#!/usr/bin/env bash
# Makes sure the tools tests/deploy uses are installed: systemd-analyze and systemd-notify (Debian's
# systemd package; installing it does not make systemd PID 1 in a container) and python3 (the tests'
# unix-datagram listener standing in for systemd's notify socket).
set -euo pipefail
missing=()
command -v systemd-analyze >/dev/null && command -v systemd-notify >/dev/null || missing+=(systemd)
command -v python3 >/dev/null || missing+=(python3)
command -v openssl >/dev/null || missing+=(openssl)        # tests/support/certs.ts makes the test PKI
command -v runuser >/dev/null || missing+=(util-linux)     # PostgreSQL runs as the postgres user
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pgrelay: tests/deploy need ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}'" >&2
  exit 1
fi
echo "pgrelay: installing Debian's ${missing[*]} (systemd-analyze, systemd-notify and python3 for tests/deploy, openssl for test certificates)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
