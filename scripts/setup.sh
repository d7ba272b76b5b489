#!/usr/bin/env bash
# Installs what vpnproxy's lab, tests and demo need, and builds the project. Idempotent and quick when
# everything is already there. Debian packages are installed only when running as root (the lab needs
# root anyway); npm dependencies come from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(openvpn strongswan-swanctl strongswan-charon libcharon-extra-plugins libcharon-extauth-plugins libstrongswan-extra-plugins
      iperf3 tshark iproute2 iputils-ping curl openssl procps psmisc ca-certificates
      dnsmasq-base chromium python3-scapy python3-cryptography libstrongswan-standard-plugins
      tinyproxy squid dante-server nftables)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; answer no without a prompt.
    echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: not root, so not installing Debian packages (${missing[*]}); lab tests will skip" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

echo "setup: building" >&2
npx tsc -p tsconfig.build.json
chmod +x dist/cli/main.js 2>/dev/null || true
