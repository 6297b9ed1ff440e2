#!/usr/bin/env bash
# `make release VERSION=x.y.z`: per architecture (linux x64 and arm64) the single binary, a tarball and a
# Debian package, then SHA256SUMS over them all, in OUTDIR (default dist/):
#   pgrelay-x.y.z-linux-x64                the executable (bun build --compile; arm64 cross-compiled)
#   pgrelay-x.y.z-linux-x64.tar.gz         pgrelay-x.y.z-linux-x64/{pgrelay, pgrelay.service,
#                                          pgrelay.sysusers, pgrelay.yaml, man/pgrelay.1, man/pgrelay.yaml.5,
#                                          LICENSE, README.md}
#   pgrelay_x.y.z_amd64.deb                /usr/bin/pgrelay, the unit (enabled, not started), the sysusers
#                                          entry, /etc/pgrelay/pgrelay.yaml (a conffile), man pages, copyright
#   SHA256SUMS                             `sha256sum -c SHA256SUMS` checks them
# Offline: the x64 binary builds on this machine's Bun; the arm64 one on PGRELAY_BUN_ARM64_RUNTIME, which
# the Makefile fetches once from the npm registry (scripts/fetch_bun_runtime.sh).
#   usage: scripts/release.sh VERSION [OUTDIR]
#   RELEASE_ARCHES="x64 arm64" (default)   DEB_MAINTAINER="Name <mail>"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:-}"
out="${2:-$root/dist}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
# Debian versions may not start with a letter and semver's "-rc.1" sorts after the release in dpkg;
# accept x.y.z with an optional ~suffix (sorts before x.y.z) or +suffix.
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([~+][0-9A-Za-z.]+)?$ ]]; then
  echo "pgrelay: make release needs VERSION=x.y.z (optionally x.y.z~rc1 or x.y.z+build1), got '$version'" >&2
  exit 2
fi
arches="${RELEASE_ARCHES:-x64 arm64}"
maintainer="${DEB_MAINTAINER:-pgrelay maintainers <pgrelay@localhost>}"
bun="$root/node_modules/.bin/bun"
for tool in dpkg-deb sha256sum tar gzip; do
  command -v "$tool" >/dev/null || { echo "pgrelay: make release needs $tool (Debian: apt-get install dpkg coreutils tar gzip)" >&2; exit 1; }
done
# Timestamps in the tarballs and packages: the commit's, so a rebuild of one commit gives the same archives
# around the binaries.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"

# Man pages, generated from the tables --help and the README come from (scripts/gen_man.ts).
"$bun" "$root/scripts/gen_man.ts" --version "$version" --out "$stage/man" >/dev/null

tarball() { # DIR NAME -> OUT/NAME.tar.gz, sorted, owned by root, with fixed times
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --mode=go-w \
    -C "$1" -cf - "$2" | gzip -9n >"$out/$2.tar.gz"
}

artifacts=()
for arch in $arches; do
  case "$arch" in
    x64) deb_arch=amd64; runtime=() ;;
    arm64)
      deb_arch=arm64
      [ -x "${PGRELAY_BUN_ARM64_RUNTIME:-}" ] || {
        echo "pgrelay: the arm64 build needs PGRELAY_BUN_ARM64_RUNTIME (make release fetches it: scripts/fetch_bun_runtime.sh)" >&2; exit 1; }
      runtime=(PGRELAY_BUN_RUNTIME="$PGRELAY_BUN_ARM64_RUNTIME") ;;
    *) echo "pgrelay: RELEASE_ARCHES: unknown architecture '$arch' (x64, arm64)" >&2; exit 2 ;;
  esac
  name="pgrelay-$version-linux-$arch"
  env "${runtime[@]}" PGRELAY_ARCH="$arch" PGRELAY_VERSION="$version" bash "$root/scripts/build_bun.sh" "$out/$name"
  artifacts+=("$name")

  # The tarball: what `make install` would put in place, for a manual install under /usr/local.
  t="$stage/tar/$name"
  install -D -m 0755 "$out/$name" "$t/pgrelay"
  install -m 0644 "$root/deploy/pgrelay.service" "$root/deploy/pgrelay.sysusers" "$root/deploy/pgrelay.yaml" "$root/LICENSE" "$root/README.md" "$t/"
  install -D -m 0644 "$stage/man/pgrelay.1" "$t/man/pgrelay.1"
  install -D -m 0644 "$stage/man/pgrelay.yaml.5" "$t/man/pgrelay.yaml.5"
  tarball "$stage/tar" "$name"
  artifacts+=("$name.tar.gz")

  # The Debian package: Debian 12's paths (units in /lib/systemd/system, sysusers in /usr/lib/sysusers.d).
  d="$stage/deb-$arch"
  install -D -m 0755 "$out/$name" "$d/usr/bin/pgrelay"
  sed 's|^ExecStart=/usr/local/bin/pgrelay |ExecStart=/usr/bin/pgrelay |' "$root/deploy/pgrelay.service" \
    | install -D -m 0644 /dev/stdin "$d/lib/systemd/system/pgrelay.service"
  install -D -m 0644 "$root/deploy/pgrelay.sysusers" "$d/usr/lib/sysusers.d/pgrelay.conf"
  install -D -m 0644 "$root/deploy/pgrelay.yaml" "$d/etc/pgrelay/pgrelay.yaml"
  install -d -m 0755 "$d/usr/share/man/man1" "$d/usr/share/man/man5" "$d/usr/share/doc/pgrelay"
  gzip -9n <"$stage/man/pgrelay.1" >"$d/usr/share/man/man1/pgrelay.1.gz"
  gzip -9n <"$stage/man/pgrelay.yaml.5" >"$d/usr/share/man/man5/pgrelay.yaml.5.gz"
  install -m 0644 "$root/deploy/debian/copyright" "$d/usr/share/doc/pgrelay/copyright"
  gzip -9n <"$root/README.md" >"$d/usr/share/doc/pgrelay/README.md.gz"
  chmod 0644 "$d"/usr/share/man/man*/*.gz
  install -d -m 0755 "$d/DEBIAN"
  install -m 0755 "$root/deploy/debian/postinst" "$root/deploy/debian/prerm" "$root/deploy/debian/postrm" "$d/DEBIAN/"
  install -m 0644 "$root/deploy/debian/conffiles" "$d/DEBIAN/"
  (cd "$d" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums)
  size="$(du -sk --exclude=DEBIAN "$d" | cut -f1)"
  sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$deb_arch|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$size|" "$root/deploy/debian/control.in" >"$d/DEBIAN/control"
  find "$d" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
  deb="pgrelay_${version}_$deb_arch.deb"
  # gzip, not dpkg-deb's default xz: 5x faster on a 100 MB binary for a few MB more, and any dpkg reads it.
  dpkg-deb --root-owner-group -Zgzip -z9 --build "$d" "$out/$deb" >/dev/null
  artifacts+=("$deb")
  echo "pgrelay: built $out/$name.tar.gz and $out/$deb"
done

(cd "$out" && sha256sum "${artifacts[@]}" >SHA256SUMS)
echo "pgrelay: release $version in $out:"
(cd "$out" && ls -l "${artifacts[@]}" SHA256SUMS | awk '{printf "  %-40s %6d MB\n", $NF, $5 / 1048576}')
