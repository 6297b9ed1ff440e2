#!/usr/bin/env bash
# Builds pgrelay as one executable with the Bun runtime inside (`bun build --compile`, offline: the runtime
# is node_modules/bun's own binary), then checks that it runs and carries package.json's version.
#   usage: scripts/build_bun.sh [OUTFILE]      (default dist/pgrelay-bun; `make build-bun`)
# Flags: --minify --bytecode (precompiled bytecode; needs --format=esm, and starts fastest: ~40 ms for
# --version against ~55 ms without) and no autoloading of .env/bunfig.toml from the working directory, so
# the service behaves the same wherever it is started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/dist/pgrelay-bun}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
bun="$root/node_modules/.bin/bun"
[ -x "$bun" ] || { echo "pgrelay: $bun is missing: run 'make setup' (npm install) first" >&2; exit 1; }
version="$("$bun" -e "console.log(require('$root/package.json').version)")"
mkdir -p "$(dirname "$out")"
# bun writes temporary files to the working directory while compiling: keep them out of the tree.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && "$bun" build --compile --minify --bytecode --format=esm \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  "$root/mod.ts" --outfile "$out" >/dev/null)
printed="$("$out" --version)"
if [ "$printed" != "pgrelay $version" ]; then
  echo "pgrelay: $out --version printed '$printed', expected 'pgrelay $version'" >&2
  exit 1
fi
"$out" --help >/dev/null
echo "pgrelay: built $out ($printed, Bun $("$bun" --version), $(du -m "$out" | cut -f1) MB)"
