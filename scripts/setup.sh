#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, the virtualenv, and the
# permissions the sandbox needs. Sourced by serve.sh and test.sh; safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"          # "test" adds the test dependencies
apt_packages=(graphviz libseccomp2)  # libseccomp2: the sandbox's seccomp filter (pyseccomp)
# chromium: the browser tests; nginx: the balancer in front of replicas (deploy/replicas.sh)
[ "$extras" = "test" ] && apt_packages+=(chromium nginx)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
fi

# Debian's interpreter, not one under /root: the sandbox's unprivileged uid must be able to
# read the standard library and site-packages.
python="$(command -v /usr/bin/python3.11 || command -v python3.11 || command -v python3)"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$extras-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
  touch "$stamp"
fi

# As root, snippets run as a dedicated uid; it must read this checkout (the first entry of the
# zygote's sys.path, holding the virtualenv) and traverse its parents (a `mktemp -d` directory
# is mode 700). The checkout gets read+search, parents only search, never write.
if [ "$(id -u)" = 0 ]; then
  chmod o+rx "$PWD"
  dir="$(dirname "$PWD")"
  while [ "$dir" != "/" ]; do
    [ -n "$(find "$dir" -maxdepth 0 ! -perm -o=x)" ] && chmod o+x "$dir"
    dir="$(dirname "$dir")"
  done
fi
