#!/usr/bin/env bash
# Writes a signed apt repository from GoReleaser's .deb files:
#
#   APT_KEY_ID=<key id or fingerprint> infra/release/apt-repo.sh DIST_DIR OUT_DIR
#
#   OUT_DIR/pool/main/k/kilometers/*.deb            the packages
#   OUT_DIR/dists/stable/main/binary-<arch>/Packages(.gz)
#   OUT_DIR/dists/stable/Release, InRelease, Release.gpg
#   OUT_DIR/kilometers-archive-keyring.gpg          the public key (binary,
#   OUT_DIR/kilometers-archive-keyring.asc          for signed-by) and armored
#
# apt-ftparchive (Debian's apt-utils) writes the indexes and the Release
# file; GnuPG signs with the secret key APT_KEY_ID in $GNUPGHOME (or
# ~/.gnupg). APT_KEY_PASSPHRASE, when set, unlocks it. Packages already in
# OUT_DIR/pool stay and are indexed with the new ones, so a run over a copy
# of the published repository keeps older versions installable.
# docs/install.md says how users add the repository.
set -euo pipefail

usage() { echo "usage: APT_KEY_ID=KEY $0 DIST_DIR OUT_DIR" >&2; exit 2; }
die() { echo "apt-repo: $*" >&2; exit 1; }

[ $# -eq 2 ] || usage
dist=$1 out=$2
[ -n "${APT_KEY_ID:-}" ] || die "APT_KEY_ID is not set (the GnuPG key to sign with)"
command -v apt-ftparchive >/dev/null || die "apt-ftparchive is not installed (apt-get install apt-utils)"
command -v gpg >/dev/null || die "gpg is not installed (apt-get install gnupg)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed (apt-get install dpkg)"
gpg --batch --list-secret-keys "$APT_KEY_ID" >/dev/null 2>&1 ||
  die "no secret key $APT_KEY_ID in ${GNUPGHOME:-~/.gnupg}"

shopt -s nullglob
debs=("$dist"/*.deb)
[ ${#debs[@]} -gt 0 ] || die "no .deb files in $dist"

suite=stable component=main
pool=pool/$component/k/kilometers
mkdir -p "$out/$pool"
for deb in "${debs[@]}"; do
  [ "$(dpkg-deb -f "$deb" Package)" = kilometers ] || die "$deb is not the kilometers package"
  cp -f "$deb" "$out/$pool/"
done

cd "$out"
# The architectures come from the packages, not a list kept here.
mapfile -t arches < <(for deb in pool/*/*/*/*.deb; do dpkg-deb -f "$deb" Architecture; done | sort -u)
rm -rf "dists/$suite"
for arch in "${arches[@]}"; do
  dir=dists/$suite/$component/binary-$arch
  mkdir -p "$dir"
  # Run from the repository root: Filename: fields are relative to it.
  apt-ftparchive --arch "$arch" packages pool >"$dir/Packages"
  gzip -9nc "$dir/Packages" >"$dir/Packages.gz"
  echo "apt-repo: $dir: $(grep -c '^Package:' "$dir/Packages") package(s)"
done

apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=Kilometers \
  -o APT::FTPArchive::Release::Label=Kilometers \
  -o APT::FTPArchive::Release::Suite="$suite" \
  -o APT::FTPArchive::Release::Codename="$suite" \
  -o APT::FTPArchive::Release::Components="$component" \
  -o APT::FTPArchive::Release::Architectures="${arches[*]}" \
  -o APT::FTPArchive::Release::Description="kilometers, from github.com/kilometers-ai/kilometers" \
  release "dists/$suite" >Release.tmp
mv Release.tmp "dists/$suite/Release"

sign=(gpg --batch --yes --local-user "$APT_KEY_ID" --digest-algo SHA512)
if [ -n "${APT_KEY_PASSPHRASE:-}" ]; then
  sign+=(--pinentry-mode loopback --passphrase-fd 3)
fi
"${sign[@]}" --clearsign -o "dists/$suite/InRelease" "dists/$suite/Release" 3<<<"${APT_KEY_PASSPHRASE:-}"
"${sign[@]}" --armor --detach-sign -o "dists/$suite/Release.gpg" "dists/$suite/Release" 3<<<"${APT_KEY_PASSPHRASE:-}"

gpg --batch --yes --export "$APT_KEY_ID" >kilometers-archive-keyring.gpg
gpg --batch --yes --armor --export "$APT_KEY_ID" >kilometers-archive-keyring.asc
[ -s kilometers-archive-keyring.gpg ] || die "could not export the public key $APT_KEY_ID"
echo "apt-repo: $out: suite $suite, architectures ${arches[*]}, signed by $APT_KEY_ID"
