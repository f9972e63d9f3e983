#!/usr/bin/env bash
# Writes a signed rpm (dnf/yum) repository from GoReleaser's .rpm files:
#
#   RPM_KEY_ID=<key id> infra/release/rpm-repo.sh DIST_DIR OUT_DIR
#
#   OUT_DIR/packages/*.rpm                        the packages
#   OUT_DIR/repodata/repomd.xml, repomd.xml.asc   the metadata and its signature
#   OUT_DIR/kilometers.repo                       what users put in /etc/yum.repos.d
#   OUT_DIR/kilometers-archive-keyring.asc        the public key
#
# createrepo_c writes the metadata; GnuPG signs repomd.xml with RPM_KEY_ID
# (default: APT_KEY_ID, one release key for both repositories), unlocked by
# APT_KEY_PASSPHRASE when set. The packages themselves are not signed: the
# signed repomd.xml carries the checksum of each, so kilometers.repo sets
# repo_gpgcheck=1. RPM_BASE_URL is the URL OUT_DIR is served at (default
# the GitHub Pages site, docs/install.md). Packages already in
# OUT_DIR/packages stay and are indexed with the new ones.
set -euo pipefail

usage() { echo "usage: RPM_KEY_ID=KEY $0 DIST_DIR OUT_DIR" >&2; exit 2; }
die() { echo "rpm-repo: $*" >&2; exit 1; }

[ $# -eq 2 ] || usage
dist=$1 out=$2
key=${RPM_KEY_ID:-${APT_KEY_ID:-}}
base=${RPM_BASE_URL:-https://kilometers-ai.github.io/kilometers/rpm}
[ -n "$key" ] || die "neither RPM_KEY_ID nor APT_KEY_ID is set (the GnuPG key to sign with)"
command -v createrepo_c >/dev/null || die "createrepo_c is not installed (apt-get install createrepo-c)"
command -v gpg >/dev/null || die "gpg is not installed (apt-get install gnupg)"
gpg --batch --list-secret-keys "$key" >/dev/null 2>&1 || die "no secret key $key in ${GNUPGHOME:-~/.gnupg}"

shopt -s nullglob
rpms=("$dist"/*.rpm)
[ ${#rpms[@]} -gt 0 ] || die "no .rpm files in $dist"
mkdir -p "$out/packages"
cp -f "${rpms[@]}" "$out/packages/"

cd "$out"
rm -rf repodata
createrepo_c --quiet --general-compress-type=gz .
sign=(gpg --batch --yes --local-user "$key" --digest-algo SHA512)
if [ -n "${APT_KEY_PASSPHRASE:-}" ]; then
  sign+=(--pinentry-mode loopback --passphrase-fd 3)
fi
"${sign[@]}" --armor --detach-sign -o repodata/repomd.xml.asc repodata/repomd.xml 3<<<"${APT_KEY_PASSPHRASE:-}"
gpg --batch --yes --armor --export "$key" >kilometers-archive-keyring.asc
[ -s kilometers-archive-keyring.asc ] || die "could not export the public key $key"
cat >kilometers.repo <<REPO
[kilometers]
name=Kilometers
baseurl=$base
enabled=1
repo_gpgcheck=1
gpgcheck=0
gpgkey=$base/kilometers-archive-keyring.asc
REPO
echo "rpm-repo: $out: $(find packages -name '*.rpm' | wc -l) package(s), signed by $key"
