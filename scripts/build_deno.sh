#!/usr/bin/env bash
# Builds pgrelay as one executable with the Deno runtime inside (`deno compile`), then checks that it runs
# and carries package.json's version.
#   usage: scripts/build_deno.sh [OUTFILE]      (default dist/pgrelay-deno; `make build`)
#
# deno compile appends the program to `denort`, a runtime-only Deno binary of the same version, which it
# downloads from Deno's release site; there is no npm package of it. Offline, DENORT_BIN must point to a
# copy (DENO_DOWNLOAD=1 lets deno download it on a machine with internet access).
#
# Why not `deno compile mod.ts` directly: with a local node_modules directory deno compile embeds all of
# it, here ~197 MB including the bun and deno binaries (--exclude does not apply to node_modules, deno
# issue 35817). `deno bundle` (offline) first makes one JavaScript file of pgrelay and its npm packages
# (yaml), and that file alone is compiled, with --no-config so no package.json or node_modules is found.
# --unstable-net is what deno.json's "unstable": ["net"] gives `deno run` (--workers uses reusePort).
# deno bundle has no --define: the version and commit (src/cli/version.ts) are declared as constants at the
# top of the bundle instead, where its inlined modules see them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/dist/pgrelay-deno}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
deno="$root/node_modules/.bin/deno"
[ -x "$deno" ] || { echo "pgrelay: $deno is missing: run 'make setup' (npm install) first" >&2; exit 1; }
deno_version="$("$deno" --version | sed -n '1s/^deno \([^ ]*\).*/\1/p')"
target="$("$deno" --version | sed -n '1s/.*(.*, \([^,)]*\))$/\1/p')"

if [ -z "${DENORT_BIN:-}" ] && [ "${DENO_DOWNLOAD:-}" != 1 ]; then
  cat >&2 <<MSG
pgrelay: 'make build' (deno compile) needs denort, the Deno runtime binary that deno compile builds on,
of exactly Deno $deno_version (denort-${target:-x86_64-unknown-linux-gnu}, from the Deno $deno_version release):
  - DENORT_BIN=/path/to/denort make build      uses a local copy (no internet needed)
  - make build DENO_DOWNLOAD=1                 lets deno compile download it (needs internet access)
DENORT_BIN is not set. 'make build-bun' builds the single binary dist/pgrelay-bun offline.
MSG
  exit 1
fi
if [ -n "${DENORT_BIN:-}" ]; then
  if [ ! -e "$DENORT_BIN" ]; then
    echo "pgrelay: DENORT_BIN=$DENORT_BIN: no such file (it must be the denort binary of Deno $deno_version)" >&2
    exit 1
  fi
  if [ ! -f "$DENORT_BIN" ] || [ ! -r "$DENORT_BIN" ]; then
    echo "pgrelay: DENORT_BIN=$DENORT_BIN is not a readable file (it must be the denort binary of Deno $deno_version)" >&2
    exit 1
  fi
fi

version="${PGRELAY_VERSION:-$("$deno" eval "console.log(JSON.parse(Deno.readTextFileSync('$root/package.json')).version)")}"
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
mkdir -p "$(dirname "$out")"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
"$deno" bundle --quiet --platform deno --output "$stage/bundle.mjs" "$root/mod.ts"
{ printf 'const PGRELAY_BUILD_VERSION = "%s", PGRELAY_BUILD_COMMIT = "%s";\n' "$version" "$commit"; cat "$stage/bundle.mjs"; } >"$stage/pgrelay.mjs"
(cd "$stage" && "$deno" compile --quiet -A --unstable-net --no-config --no-lock --no-npm --no-remote \
  --output "$out" pgrelay.mjs)
printed="$("$out" --version 2>&1 | head -n 1 || true)"
if [ "$printed" != "pgrelay $version (deno $deno_version, commit $commit)" ]; then
  rm -f "$out"
  echo "pgrelay: the binary built on DENORT_BIN=${DENORT_BIN:-(downloaded)} printed '$printed' for --version," \
    "not 'pgrelay $version': DENORT_BIN must be denort $deno_version, not the deno command line itself" >&2
  exit 1
fi
"$out" --help >/dev/null
echo "pgrelay: built $out ($printed, Deno $deno_version, $(du -m "$out" | cut -f1) MB)"
