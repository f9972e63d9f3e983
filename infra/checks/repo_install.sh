#!/usr/bin/env bash
# The apt and rpm repositories as users meet them (part of
# infra/checks/run.sh, and of the release workflow):
#
#   infra/checks/repo_install.sh DIST_DIR
#
# From GoReleaser's DIST_DIR (a snapshot or a release): infra/release/apt-repo.sh
# builds the repository, signed with a throwaway key made here; it is served
# on 127.0.0.1 and apt-get installs kilometers from it into a throwaway root
# (its own dpkg database, dpkg --root) with signature checking on, through a
# signed-by sources entry as docs/install.md has users write. Then:
#   - the installed kilometers runs: --version, and a line through `monitor -- cat`;
#   - the next version (the same .deb repacked with a higher version) is
#     added to the repository and `apt-get upgrade` installs it;
#   - the same packages signed by another key are refused by `apt-get update`.
# The same for rpm, less the upgrade (repacking an .rpm needs rpmbuild):
# infra/release/rpm-repo.sh, `dnf --installroot` with repo_gpgcheck through
# the kilometers.repo it writes, and a repository signed by another key refused.
# Needs apt-get, apt-ftparchive (apt-utils), createrepo_c, dnf, gpg and
# python3, and root (or passwordless sudo) for dpkg and dnf; nothing is
# installed on the machine itself.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIST_DIR" >&2; exit 2; }
dist=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "repo-install: FAIL: $*" >&2; exit 1; }
start=$SECONDS
say() { printf '   [%3ds] %s\n' $((SECONDS - start)) "$*"; }

for c in apt-get apt-ftparchive createrepo_c dnf gpg dpkg dpkg-deb python3; do
  command -v "$c" >/dev/null ||
    die "$c is not installed (apt-get install apt apt-utils createrepo-c dnf gnupg dpkg python3)"
done
# dpkg and dnf must own the files they unpack: root, or sudo on CI runners.
as_root=()
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || die "installing with dpkg needs root or passwordless sudo"
  as_root=(sudo -n)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-repos.XXXXXX")
server=
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  GNUPGHOME="$tmp/gnupg" gpgconf --kill all 2>/dev/null || true
  # dnf (librepo) starts a gpg-agent for each repository keyring it makes.
  find "$tmp" -type d -name pubring -path '*/var/cache/dnf/*' 2>/dev/null | while read -r dir; do
    "${as_root[@]}" env GNUPGHOME="$dir" gpgconf --kill all 2>/dev/null || true
  done
  "${as_root[@]}" rm -rf "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------------ keys
export GNUPGHOME="$tmp/gnupg"
mkdir -m 0700 "$GNUPGHOME"
newkey() {
  gpg --batch --quiet --passphrase '' --quick-gen-key "$1" ed25519 sign never 2>/dev/null
  gpg --batch --with-colons --list-secret-keys "$1" 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }'
}
key=$(newkey "Kilometers test archive <archive@kilometers.invalid>")
wrongkey=$(newkey "Someone else <other@kilometers.invalid>")
if [ -z "$key" ] || [ -z "$wrongkey" ]; then die "gpg made no keys"; fi
say "throwaway keys: archive $key, other $wrongkey"

# The scripts refuse to write an unsigned or empty repository.
mkdir -p "$tmp/empty"
for script in apt-repo.sh rpm-repo.sh; do
  for bad in "no key id|" "an unknown key|0123456789ABCDEF0123456789ABCDEF01234567" "no packages|$key"; do
    what=${bad%%|*} id=${bad#*|} from=$dist
    [ "$what" != "no packages" ] || from=$tmp/empty
    if APT_KEY_ID=$id RPM_KEY_ID=$id "$here/infra/release/$script" "$from" "$tmp/refused" >"$tmp/refused.log" 2>&1; then
      die "$script wrote a repository with $what: $(cat "$tmp/refused.log")"
    fi
    if [ -e "$tmp/refused/dists" ] || [ -e "$tmp/refused/repodata" ]; then
      die "$script left a repository behind with $what"
    fi
  done
done
say "apt-repo.sh and rpm-repo.sh refuse no key id, an unknown key and no packages"

# -------------------------------------------------------------- server
www=$tmp/www
mkdir -p "$www"
# Serve on loopback; the server reports the port the kernel picked.
python3 - "$www" "$tmp/port" <<'PY' >"$tmp/http.log" 2>&1 &
import functools, http.server, os, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    # File times have one-second resolution here and both repositories are
    # written within a second: answer every request in full, never 304.
    def parse_request(self):
        ok = super().parse_request()
        if ok:
            del self.headers["If-Modified-Since"]
        return ok

    def log_message(self, *args):
        pass

handler = functools.partial(Handler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
PY
server=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || die "the HTTP server did not start: $(cat "$tmp/http.log")"
base="http://127.0.0.1:$(cat "$tmp/port")"

# ------------------------------------------------------ apt repositories
debs=("$dist"/*_amd64.deb)
[ -f "${debs[0]}" ] || die "no amd64 .deb in $dist"
version=$(dpkg-deb -f "${debs[0]}" Version)
# The next snapshot: the same package with a version dpkg orders after it.
next="$version.1"
dpkg --compare-versions "$next" gt "$version" || die "$next does not sort after $version"
mkdir -p "$tmp/next"
for deb in "$dist"/*.deb; do
  arch=$(dpkg-deb -f "$deb" Architecture)
  dpkg-deb -R "$deb" "$tmp/unpacked"
  sed -i "s/^Version: .*/Version: $next/" "$tmp/unpacked/DEBIAN/control"
  # gzip -1: xz takes seconds per package on a busy machine.
  dpkg-deb -Zgzip -z1 --root-owner-group -b "$tmp/unpacked" "$tmp/next/kilometers_${next}_$arch.deb" >/dev/null
  rm -rf "$tmp/unpacked"
done

APT_KEY_ID=$key "$here/infra/release/apt-repo.sh" "$dist" "$www/v1" >/dev/null
cp -a "$www/v1" "$www/v2"
APT_KEY_ID=$key "$here/infra/release/apt-repo.sh" "$tmp/next" "$www/v2" >/dev/null
APT_KEY_ID=$wrongkey "$here/infra/release/apt-repo.sh" "$dist" "$www/wrong" >/dev/null
for f in dists/stable/Release dists/stable/InRelease dists/stable/Release.gpg \
  dists/stable/main/binary-amd64/Packages.gz dists/stable/main/binary-arm64/Packages.gz \
  kilometers-archive-keyring.gpg; do
  [ -s "$www/v1/$f" ] || die "the repository lacks $f"
done
[ "$(grep -c '^Package: kilometers' "$www/v2/dists/stable/main/binary-amd64/Packages")" = 2 ] ||
  die "the second repository does not hold both versions"
cp "$www/v1/kilometers-archive-keyring.gpg" "$tmp/archive-keyring.gpg"
ln -s v1 "$www/apt"
say "apt repositories: $version, then $next as well, and one signed by the other key"


# ---------------------------------------------------------------- a root
# mkroot DIR PATH: an empty system in DIR whose apt trusts only the archive
# key, through signed-by, for the repository at $base/PATH. APT_CONFIG
# keeps the machine's own apt configuration out.
mkroot() {
  local r=$1
  mkdir -p "$r"/etc/apt/{apt.conf.d,preferences.d,sources.list.d,trusted.gpg.d,keyrings} \
    "$r"/var/lib/apt/lists/partial "$r"/var/cache/apt/archives/partial \
    "$r"/var/lib/dpkg/{info,updates,triggers} "$r"/var/log
  : >"$r/var/lib/dpkg/status"
  cp "$tmp/archive-keyring.gpg" "$r/etc/apt/keyrings/kilometers-archive-keyring.gpg"
  echo "deb [signed-by=$r/etc/apt/keyrings/kilometers-archive-keyring.gpg] $base/$2 stable main" \
    >"$r/etc/apt/sources.list.d/kilometers.list"
  cat >"$r/apt.conf" <<CONF
Dir "$r/";
Dir::State::status "$r/var/lib/dpkg/status";
Dir::Etc::SourceList "$r/etc/apt/sources.list.d/kilometers.list";
Dir::Etc::SourceParts "$r/etc/apt/sources.list.d";
Dir::Log "$r/var/log/apt";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::Retries "0";
DPkg::Options { "--root=$r"; "--log=$r/var/log/dpkg.log"; "--force-bad-path"; };
CONF
}
apt() { "${as_root[@]}" env APT_CONFIG="$1/apt.conf" apt-get -q -y "${@:2}"; }

# ------------------------------------------------------------- install
r=$tmp/root
mkroot "$r" apt
apt "$r" update >"$tmp/update.log" 2>&1 || die "apt-get update failed: $(cat "$tmp/update.log")"
apt "$r" install kilometers >"$tmp/install.log" 2>&1 || die "apt-get install kilometers failed: $(cat "$tmp/install.log")"
got=$(dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version} ${db:Status-Status}' kilometers)
[ "$got" = "$version installed" ] || die "dpkg in the root says '$got', want '$version installed'"
say "apt-get install kilometers: $version installed into the root"

bin=$r/usr/bin/kilometers
"$bin" --version | grep -q "^kilometers " || die "$bin --version: $("$bin" --version 2>&1)"
say "$("$bin" --version)"
line='{"jsonrpc":"2.0","id":1,"method":"ping"}'
got=$(echo "$line" | KILOMETERS_HOME="$tmp/home" "$bin" monitor -- cat) || die "kilometers monitor -- cat failed"
[ "$got" = "$line" ] || die "kilometers monitor -- cat relayed '$got', want '$line'"
KILOMETERS_HOME="$tmp/home" "$bin" stats --json >"$tmp/stats.json" || die "kilometers stats --json failed"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["totals"]; sys.exit(t["events"] != 2)' "$tmp/stats.json" ||
  die "the monitor did not record the request both ways: $(cat "$tmp/stats.json")"
say "kilometers monitor -- cat relayed a line unchanged and recorded it"
for f in usr/share/man/man1/kilometers.1.gz usr/share/bash-completion/completions/kilometers; do
  [ -s "$r/$f" ] || die "the install lacks /$f"
done

# ------------------------------------------------------------- upgrade
ln -sfn v2 "$www/apt"
apt "$r" update >"$tmp/update2.log" 2>&1 || die "apt-get update (second repository) failed: $(cat "$tmp/update2.log")"
apt "$r" upgrade >"$tmp/upgrade.log" 2>&1 || die "apt-get upgrade failed: $(cat "$tmp/upgrade.log")"
got=$(dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version} ${db:Status-Status}' kilometers)
[ "$got" = "$next installed" ] || die "after apt-get upgrade dpkg says '$got', want '$next installed': $(cat "$tmp/upgrade.log")"
"$bin" --version >/dev/null || die "the upgraded kilometers does not run"
say "apt-get upgrade: $version -> $next"

# ----------------------------------------------------------- wrong key
w=$tmp/wrong-root
mkroot "$w" wrong
if apt "$w" update >"$tmp/wrong.log" 2>&1; then
  die "apt-get update accepted a repository signed by another key: $(cat "$tmp/wrong.log")"
fi
# gpgv names the key by its long id, sqv (newer apt) by its fingerprint.
grep -qE "NO_PUBKEY ${wrongkey: -16}|$wrongkey" "$tmp/wrong.log" ||
  die "apt-get update failed, but not for the signature: $(cat "$tmp/wrong.log")"
if apt "$w" install kilometers >"$tmp/wrong-install.log" 2>&1; then
  die "apt-get installed kilometers from a repository signed by another key"
fi
[ ! -e "$w/usr/bin/kilometers" ] || die "a kilometers binary came from the wrongly signed repository"
say "a repository signed by another key: refused (NO_PUBKEY)"

# -------------------------------------------------------------------- rpm
RPM_KEY_ID=$key RPM_BASE_URL=$base/rpm "$here/infra/release/rpm-repo.sh" "$dist" "$www/rpm" >/dev/null
RPM_KEY_ID=$wrongkey RPM_BASE_URL=$base/rpm-wrong "$here/infra/release/rpm-repo.sh" "$dist" "$www/rpm-wrong" >/dev/null
for f in repodata/repomd.xml repodata/repomd.xml.asc kilometers.repo kilometers-archive-keyring.asc; do
  [ -s "$www/rpm/$f" ] || die "the rpm repository lacks $f"
done

# dnfroot DIR REPOFILE: an empty system in DIR whose dnf knows only REPOFILE;
# dnf imports the repository key named in it (gpgkey=) into DIR.
dnfroot() {
  mkdir -p "$1/etc/yum.repos.d" "$1/etc/dnf"
  printf '[main]\n' >"$1/etc/dnf/dnf.conf"
  cp "$2" "$1/etc/yum.repos.d/kilometers.repo"
}
dnfin() {
  "${as_root[@]}" dnf -y --installroot="$1" --config="$1/etc/dnf/dnf.conf" --releasever=1 \
    --setopt=reposdir="$1/etc/yum.repos.d" --setopt=cachedir="$1/var/cache/dnf" \
    --setopt=install_weak_deps=False "${@:2}"
}

d=$tmp/dnf-root
dnfroot "$d" "$www/rpm/kilometers.repo"
grep -qx 'repo_gpgcheck=1' "$d/etc/yum.repos.d/kilometers.repo" || die "kilometers.repo does not check the signature"
dnfin "$d" install kilometers >"$tmp/dnf.log" 2>&1 || die "dnf install kilometers failed: $(cat "$tmp/dnf.log")"
grep -q 'Importing GPG key' "$tmp/dnf.log" || die "dnf did not import the repository key: $(cat "$tmp/dnf.log")"
rpmversion=$(dnfin "$d" -q repoquery --installed --qf '%{version}' kilometers 2>/dev/null)
[ "$rpmversion" = "${version}" ] || die "dnf in the root has kilometers '$rpmversion' installed, want '$version'"
"$d/usr/bin/kilometers" --version | grep -q "^kilometers " || die "the kilometers dnf installed does not run"
got=$(echo "$line" | KILOMETERS_HOME="$tmp/home-rpm" "$d/usr/bin/kilometers" monitor -- cat) || die "kilometers (rpm) monitor -- cat failed"
[ "$got" = "$line" ] || die "kilometers (rpm) monitor -- cat relayed '$got', want '$line'"
say "dnf install kilometers: $rpmversion installed into a root, runs, relays a line"

# The client trusts the archive key; the repository is signed by the other.
w=$tmp/dnf-wrong-root
sed "s|^gpgkey=.*|gpgkey=$base/rpm/kilometers-archive-keyring.asc|" "$www/rpm-wrong/kilometers.repo" >"$tmp/wrong.repo"
dnfroot "$w" "$tmp/wrong.repo"
if dnfin "$w" install kilometers >"$tmp/dnf-wrong.log" 2>&1; then
  die "dnf installed kilometers from a repository signed by another key: $(cat "$tmp/dnf-wrong.log")"
fi
grep -q 'repomd.xml GPG signature verification error' "$tmp/dnf-wrong.log" ||
  die "dnf failed, but not for the signature: $(cat "$tmp/dnf-wrong.log")"
[ ! -e "$w/usr/bin/kilometers" ] || die "a kilometers binary came from the wrongly signed rpm repository"
say "an rpm repository signed by another key: refused (repomd.xml signature)"
