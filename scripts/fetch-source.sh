#!/usr/bin/env bash
# fetch-source.sh PACKAGE SUITE FILE SHA256 - put FILE of Debian source package PACKAGE (from
# SUITE: bookworm or trixie) into build/downloads/, checked by sha256. Cached: a file already
# there with the right checksum is kept. The download uses `apt-get source --download-only`,
# so it needs the deb-src lines this script adds (as root) when they are missing.
# Prints the path of the file on stdout; messages go to stderr.
set -euo pipefail

[[ $# -eq 4 ]] || { echo "usage: fetch-source.sh PACKAGE SUITE FILE SHA256" >&2; exit 2; }
PKG=$1 SUITE=$2 FILE=$3 SHA256=$4
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DL_DIR="$ROOT/build/downloads"
APT_SRC=/etc/apt/sources.list.d/hyperlight-src.sources

say() { printf '[fetch %s] %s\n' "$PKG" "$*" >&2; }
die() { printf '[fetch %s] ERROR: %s\n' "$PKG" "$*" >&2; exit 1; }
sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$SHA256" ]]; }

mkdir -p "$DL_DIR"
if sha_ok "$DL_DIR/$FILE"; then
    echo "$DL_DIR/$FILE"
    exit 0
fi
rm -f "$DL_DIR/$FILE"
[[ $EUID -eq 0 ]] || die "need root to add the deb-src apt source (or place $FILE in $DL_DIR)"
if [[ ! -f "$APT_SRC" ]]; then
    say "adding deb-src apt source $APT_SRC"
    cat >"$APT_SRC" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
# The source indexes are updated only when they do not know the package yet.
if ! apt-cache showsrc "$PKG" 2>/dev/null | grep -q '^Package:'; then
    say "apt-get update (for source indexes)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
fi
tmp="$(mktemp -d "$DL_DIR/apt-source.XXXXXX")"
chmod 755 "$tmp" # _apt writes here
say "downloading $PKG/$SUITE"
# The .dsc may be missing on the mirror while the file we want is there: tolerate the
# failure and check the file ourselves.
(cd "$tmp" && apt-get source --download-only "$PKG/$SUITE") >"$tmp.log" 2>&1 \
    || say "apt-get source reported an error (tolerated; checking $FILE)"
if [[ ! -f "$tmp/$FILE" ]]; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "download failed: $FILE not fetched by apt-get source $PKG/$SUITE"
fi
rm -f "$tmp.log"
if ! sha_ok "$tmp/$FILE"; then
    got="$(sha256sum "$tmp/$FILE" | cut -d' ' -f1)"
    rm -rf "$tmp"
    die "sha256 mismatch for $FILE: expected $SHA256, got $got"
fi
mv "$tmp/$FILE" "$DL_DIR/$FILE"
rm -rf "$tmp"
say "sha256 ok: $DL_DIR/$FILE"
echo "$DL_DIR/$FILE"
