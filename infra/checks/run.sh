#!/usr/bin/env bash
# Deploy and release checks (`make test-deploy`, part of `make test`):
#   1. cfn-lint over template.yaml;
#   2. the SAM translator over template.yaml, its output checked, and the
#      translated stack created in moto's CloudFormation;
#   3. actionlint (pinned) over .github/workflows;
#   4. goreleaser check, then a snapshot release into a temporary dist
#      directory, and the result inspected: the amd64 .deb unpacked and its
#      binary run, completions and man page present, .rpm files, archives
#      with README and LICENSE, checksums that verify; then the apt and
#      rpm repositories built from its packages (infra/release/apt-repo.sh,
#      rpm-repo.sh), installed from, upgraded (apt), and refused when
#      wrongly signed (infra/checks/repo_install.sh);
#   5. infra/smoke.sh against a real functions/local on a free port.
# No AWS account, package repository or PyPI is needed. Pinned Go tools are
# installed into $(go env GOPATH)/bin when missing.
#
#   infra/checks/run.sh [template] [workflows] [release] [smoke]
#
# runs only the sections named (the release workflow runs `release`); no
# argument runs them all.
set -euo pipefail
cd "$(dirname "$0")/../.."

sections=("$@")
for s in "${sections[@]}"; do
  case $s in template | workflows | release | smoke) ;; *) echo "checks: unknown section '$s'" >&2; exit 2 ;; esac
done
want() { [ ${#sections[@]} -eq 0 ] || [[ " ${sections[*]} " == *" $1 "* ]]; }

ACTIONLINT_VERSION=1.7.12
GORELEASER_VERSION=2.16.0

start=$SECONDS
step() { printf '\n== [%4ds] %s\n' $((SECONDS - start)) "$*"; }
die() { echo "checks: FAIL: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
gobin=$(go env GOPATH)/bin
export PATH="$PATH:$gobin"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-checks.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ----------------------------------------------------------------- template
if want template; then
step "cfn-lint template.yaml"
command -v cfn-lint >/dev/null ||
  die "cfn-lint is not installed (pip install cfn-lint aws-sam-translator moto; it is preinstalled on the project's machines)"
cfn-lint --version
cfn-lint template.yaml

step "SAM translator + moto create-stack (infra/checks/sam_translate.py --moto)"
python3 -c 'import cfnlint, samtranslator, moto, boto3' 2>/dev/null ||
  die "python3 lacks cfnlint, samtranslator, moto or boto3 (pip install cfn-lint aws-sam-translator 'moto[cloudformation]')"
python3 infra/checks/sam_translate.py --moto -o "$tmp/translated.json" template.yaml
python3 - <<'EOF' || die "infra/samconfig.toml is not valid SAM CLI configuration"
import tomllib
c = tomllib.load(open("infra/samconfig.toml", "rb"))
d = c["default"]["deploy"]["parameters"]
assert c["version"] == 0.1 and c["default"]["global"]["parameters"]["stack_name"], "version/stack_name"
assert "CAPABILITY_IAM" in d["capabilities"] and d["resolve_s3"] is True, "capabilities/resolve_s3"
print("infra/samconfig.toml: ok")
EOF
fi

# ---------------------------------------------------------------- workflows
if want workflows; then
step "actionlint v$ACTIONLINT_VERSION over .github/workflows, shellcheck over infra/**/*.sh"
# ShellCheck lints the scripts here and, through actionlint, every `run:`
# block of the workflows (GitHub's runners have it; Debian: apt-get install shellcheck).
if ! command -v shellcheck >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing shellcheck (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
  fi
  command -v shellcheck >/dev/null || die "shellcheck is not installed (apt-get install shellcheck)"
fi
shellcheck --version | sed -n 2p
shellcheck infra/checks/*.sh infra/release/*.sh infra/deploy.sh infra/smoke.sh
if [ "$(actionlint -version 2>/dev/null | head -1)" != "v$ACTIONLINT_VERSION" ]; then
  echo "installing actionlint v$ACTIONLINT_VERSION into $gobin"
  go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
fi
workflows=(.github/workflows/*.yml)
[ -f "${workflows[0]}" ] || die "no workflows in .github/workflows"
echo "actionlint $("$gobin/actionlint" -version | head -1): ${workflows[*]}"
"$gobin/actionlint" -no-color -shellcheck shellcheck "${workflows[@]}"
fi

# ------------------------------------------------------------------ release
if want release; then
step "goreleaser check"
if ! goreleaser --version 2>/dev/null | grep -q "GitVersion: *v$GORELEASER_VERSION\$"; then
  echo "installing goreleaser v$GORELEASER_VERSION into $gobin"
  go install "github.com/goreleaser/goreleaser/v2@v$GORELEASER_VERSION"
fi
goreleaser="$gobin/goreleaser"
[ -x "$goreleaser" ] || goreleaser=$(command -v goreleaser)
# `check` exits non-zero on deprecated properties too.
"$goreleaser" check

step "goreleaser release --snapshot --clean --skip=publish (dist in $tmp/dist)"
# A private dist directory: --clean must not wipe dist/ (make lambdas) of a
# working tree others use, and the checks must not see stale artifacts.
dist="$tmp/dist"
{ cat .goreleaser.yaml; printf '\ndist: %s\n' "$dist"; } >"$tmp/goreleaser.yaml"
# GoReleaser reads the commit and its date only in a clone with a remote
# (without one it stamps "none"); lend it one through the environment,
# leaving the repository's configuration alone.
if ! git ls-remote --get-url >/dev/null 2>&1; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
    GIT_CONFIG_VALUE_0=https://github.com/kilometers-ai/kilometers.git
fi
"$goreleaser" release --snapshot --clean --skip=publish --parallelism 2 -f "$tmp/goreleaser.yaml" 2>&1 |
  grep -vE '^\s+• (building|archiving|creating|writing|calculating) ' || true
[ -f "$dist/metadata.json" ] || die "goreleaser produced no $dist/metadata.json"

step "inspect the snapshot release"
version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$dist/metadata.json")
# What .goreleaser.yaml stamps: {{ .ShortCommit }} and {{ .CommitDate }}.
commit=$(git rev-parse --short HEAD)
date=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
echo "snapshot version=$version commit=$commit date=$date"

# Checksums cover every archive and package, and verify.
[ -f "$dist/checksums.txt" ] || die "no checksums.txt"
(cd "$dist" && sha256sum --check --strict --quiet checksums.txt) || die "checksums.txt does not verify"
for f in "$dist"/*.tar.gz "$dist"/*.zip "$dist"/*.deb "$dist"/*.rpm; do
  grep -q " $(basename "$f")\$" "$dist/checksums.txt" || die "$(basename "$f") is not in checksums.txt"
done
echo "checksums.txt: $(wc -l <"$dist/checksums.txt") files verified"

# Archives: one per OS/arch, README and LICENSE and the binary in each.
python3 - "$dist" <<'EOF' || die "archive check failed"
import glob, os, sys, tarfile, zipfile
dist = sys.argv[1]
want = {f"{os_}_{arch}" for os_ in ("linux", "darwin", "windows") for arch in ("amd64", "arm64")}
seen = set()
for path in sorted(glob.glob(os.path.join(dist, "kilometers_*"))):
    name = os.path.basename(path)
    if name.endswith(".tar.gz"):
        names = tarfile.open(path).getnames()
    elif name.endswith(".zip"):
        names = zipfile.ZipFile(path).namelist()
    else:
        continue
    target = next((t for t in want if f"_{t}." in name), None)
    if target is None:
        sys.exit(f"unexpected archive {name}")
    if target.startswith("windows") != name.endswith(".zip"):
        sys.exit(f"{name}: windows archives are zip, the others tar.gz")
    binary = "kilometers.exe" if target.startswith("windows") else "kilometers"
    for f in ("README.md", "LICENSE", binary, "completions/kilometers.bash", "man/kilometers.1.gz"):
        if f not in names:
            sys.exit(f"{name} lacks {f}: {sorted(names)}")
    seen.add(target)
    print(f"{name}: {len(names)} files, README.md, LICENSE, {binary}")
if seen != want:
    sys.exit(f"archives missing for {sorted(want - seen)}")
EOF

# Packages: .deb and .rpm for both architectures.
for arch in amd64 arm64; do
  debs=("$dist"/*_"$arch".deb)
  [ -f "${debs[0]}" ] || die "no $arch .deb"
done
for arch in x86_64 aarch64; do
  rpms=("$dist"/*."$arch".rpm)
  rpm=${rpms[0]}
  [ -f "$rpm" ] || die "no $arch .rpm"
  # An RPM starts with the lead magic ed ab ee db.
  [ "$(head -c4 "$rpm" | od -An -tx1 | tr -d ' \n')" = "edabeedb" ] || die "$rpm is not an RPM"
  echo "$(basename "$rpm"): $(stat -c %s "$rpm") bytes"
done

# The amd64 .deb, unpacked as dpkg would install it (no root needed).
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to inspect the .deb (apt-get install dpkg)"
debs=("$dist"/*_amd64.deb)
deb=${debs[0]}
echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ')"
[ "$(dpkg-deb -f "$deb" Package)" = kilometers ] || die "$deb: package name"
[ "$(dpkg-deb -f "$deb" Architecture)" = amd64 ] || die "$deb: architecture"
root="$tmp/deb"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/kilometers \
  usr/share/bash-completion/completions/kilometers \
  usr/share/zsh/vendor-completions/_kilometers \
  usr/share/fish/vendor_completions.d/kilometers.fish \
  usr/share/man/man1/kilometers.1.gz \
  usr/share/man/man1/kilometers-monitor.1.gz \
  usr/share/doc/kilometers/copyright; do
  [ -s "$root/$f" ] || die "$deb lacks /$f"
done
gzip -dc "$root/usr/share/man/man1/kilometers.1.gz" | grep -q '^\.TH "KILOMETERS"' || die "man page has no .TH header"
grep -q 'complete -o default -F __start_kilometers kilometers' "$root/usr/share/bash-completion/completions/kilometers" ||
  die "bash completion does not register kilometers"
got=$("$root/usr/bin/kilometers" --version)
echo "usr/bin/kilometers --version: $got"
want="kilometers $version (commit $commit, built $date)"
[ "$got" = "$want" ] || die "--version printed '$got', want '$want'"
"$root/usr/bin/kilometers" --help | grep -q 'monitor' || die "--help does not list monitor"
KILOMETERS_HOME="$tmp/home" "$root/usr/bin/kilometers" stats --json >/dev/null || die "kilometers stats --json failed on an empty store"
echo "deb: binary, completions (bash, zsh, fish), man pages and copyright present; binary runs"

step "apt and rpm repositories from the snapshot: install, upgrade, wrong key (infra/checks/repo_install.sh)"
infra/checks/repo_install.sh "$dist"
fi

# -------------------------------------------------------------------- smoke
if want smoke; then
step "infra/smoke.sh against functions/local (real PostgreSQL)"
infra/local/with-postgres.sh infra/checks/smoke_local.sh
fi

step "all deploy checks passed in $((SECONDS - start))s"
