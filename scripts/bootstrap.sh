#!/usr/bin/env bash
# Installs what Lumen needs on a fresh Debian/Ubuntu machine, and nothing that is already
# there: the system tools the lab and the prober run (nmap, nsenter, ip, nft, nats-server),
# openssl (the lab's API emulator serves HTTPS), Chromium (the dashboard's and HTML
# report's browser tests drive it with playwright-core; no browser is downloaded), xmllint (the JUnit report is checked against its
# XSD), unzip (the tests take kubectl and helm
# out of an npm package), the npm dependencies, and nats-server 2.10 for the auth callout tests
# (into .lumen/tools), and Debian's promtool for the alert rule tests (into .lumen/tools too).
# Safe to run again; `npm test` and `npm run demo` call it.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A package_of=(
  [nmap]=nmap
  [nsenter]=util-linux
  [ip]=iproute2
  [nft]=nftables
  [nats-server]=nats-server
  [unzip]=unzip
  [openssl]=openssl
  [xmllint]=libxml2-utils
  [chromium]=chromium
)

missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}; run as root or install them first" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is absent or older than the lockfile.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "bootstrap: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# nats-server 2.10 for NATS auth callout (per-node prober credentials, ADR 0016), beside the
# repository in .lumen/tools: Debian 12's package is 2.9.10.
# Only the tests need it: the demo goes on without it (the tests then fail, saying so).
node scripts/fetch-nats-server.mjs ||
  echo "bootstrap: warning: no nats-server 2.10 in .lumen/tools; the auth callout tests will fail" >&2

# promtool from Debian's prometheus package, for the chart's alert rule tests: taken out of
# the package into .lumen/tools rather than installed, which would set up (and on a machine
# with systemd, start) a Prometheus server. Only the tests need it.
if [[ ! -x .lumen/tools/promtool/promtool ]]; then
  scratch=$(mktemp -d)
  if (cd "$scratch" && { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; }) >/dev/null 2>&1 &&
    dpkg-deb -x "$scratch"/prometheus_*.deb "$scratch/root"; then
    mkdir -p .lumen/tools/promtool
    cp "$scratch/root/usr/bin/promtool" .lumen/tools/promtool/promtool
    echo "bootstrap: promtool $(.lumen/tools/promtool/promtool --version 2>&1 | head -1 | cut -d' ' -f3) in .lumen/tools" >&2
  else
    echo "bootstrap: warning: could not take promtool out of Debian's prometheus package; the alert rule tests will fail" >&2
  fi
  rm -rf "$scratch"
fi
