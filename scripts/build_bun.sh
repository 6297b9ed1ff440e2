#!/usr/bin/env bash
# Builds pgrelay as one executable with the Bun runtime inside (`bun build --compile`), then checks that it
# runs and carries the version and the commit it was built from.
#   usage: scripts/build_bun.sh [OUTFILE]      (default dist/pgrelay-bun; `make build-bun`)
#   PGRELAY_VERSION=x.y.z   the version --version prints (default: package.json's)
#   PGRELAY_ARCH=arm64      cross-compile for linux-arm64 (default x64, this machine's own Bun: offline)
#   PGRELAY_BUN_RUNTIME=F   the Bun runtime binary to build on (--compile-executable-path); for arm64,
#                           `make release` fetches it from the npm registry first (scripts/fetch_bun_runtime.sh)
# Flags: --minify --bytecode (precompiled bytecode; needs --format=esm, and starts fastest: ~40 ms for
# --version against ~55 ms without) and no autoloading of .env/bunfig.toml from the working directory, so
# the service behaves the same wherever it is started. --define sets PGRELAY_BUILD_VERSION/_COMMIT
# (src/cli/version.ts).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/dist/pgrelay-bun}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
bun="$root/node_modules/.bin/bun"
[ -x "$bun" ] || { echo "pgrelay: $bun is missing: run 'make setup' (npm install) first" >&2; exit 1; }
version="${PGRELAY_VERSION:-$("$bun" -e "console.log(require('$root/package.json').version)")}"
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
arch="${PGRELAY_ARCH:-x64}"
case "$arch" in x64 | arm64) ;; *) echo "pgrelay: PGRELAY_ARCH=$arch: expected x64 or arm64" >&2; exit 1 ;; esac
target=(--target="bun-linux-$arch")
if [ -n "${PGRELAY_BUN_RUNTIME:-}" ]; then
  [ -x "$PGRELAY_BUN_RUNTIME" ] || { echo "pgrelay: PGRELAY_BUN_RUNTIME=$PGRELAY_BUN_RUNTIME is not an executable file" >&2; exit 1; }
  target+=(--compile-executable-path="$(realpath "$PGRELAY_BUN_RUNTIME")") # bun runs in a temp dir below
elif [ "$arch-$(uname -m)" = x64-x86_64 ] || [ "$arch-$(uname -m)" = arm64-aarch64 ]; then
  target=() # this machine's own Bun: no download
# else: bun build downloads the target's runtime from the npm registry itself
fi
mkdir -p "$(dirname "$out")"
# bun writes temporary files to the working directory while compiling: keep them out of the tree.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && "$bun" build --compile --minify --bytecode --format=esm "${target[@]}" \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --define "PGRELAY_BUILD_VERSION=\"$version\"" --define "PGRELAY_BUILD_COMMIT=\"$commit\"" \
  "$root/mod.ts" --outfile "$out" >/dev/null)
if [ "$arch" = x64 ] && [ "$(uname -m)" = x86_64 ]; then
  printed="$("$out" --version)"
  expected="pgrelay $version (bun $("$bun" --version), commit $commit)"
  if [ "$printed" != "$expected" ]; then
    echo "pgrelay: $out --version printed '$printed', expected '$expected'" >&2
    exit 1
  fi
  "$out" --help >/dev/null
else
  printed="pgrelay $version (linux-$arch, not run here)"
fi
echo "pgrelay: built $out ($printed, $(du -m "$out" | cut -f1) MB)"
