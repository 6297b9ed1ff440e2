#!/usr/bin/env bash
# The core must run on any runtime: no Deno.*, Bun.*, node: imports or console.* in src/protocol, src/core, src/auth, src/routing, src/pool.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -rnE '\bDeno\.|\bBun\.|from "node:|console\.' src/protocol src/core src/auth src/routing src/pool; then
  echo "check_core_purity: the lines above use a runtime API in the runtime-agnostic core (move them to src/adapters or src/host)" >&2
  exit 1
fi
echo "check_core_purity: src/protocol, src/core, src/auth, src/routing and src/pool use web-platform APIs only"
