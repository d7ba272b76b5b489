#!/usr/bin/env bash
# The demo: the main job against the built-in lab. Until vpnproxy's own OpenVPN client lands, the job is run by
# the stock OpenVPN client (the lab's native baseline): start the lab (OpenVPN server, web host behind it, stock
# client in its own namespace), fetch /bytes/1000000 from the web host through the tunnel, check its sha256,
# print what ran where, and remove everything again (also on Ctrl-C or failure). Needs root; run from a clone:
#   sudo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (the lab uses network namespaces); try: sudo bash scripts/demo.sh" >&2
  exit 1
fi

bash scripts/setup.sh

lab() { node --import tsx test/lab/cli.ts "$@"; }
run=""
tmp="$(mktemp -d)"
cleanup() {
  # A signal can arrive while "lab up" runs; bash handles it afterwards, so take the run id from its output.
  if [ -z "$run" ] && [ -s "$tmp/lab.json" ]; then
    run="$(tail -n 1 "$tmp/lab.json" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { try { process.stdout.write(JSON.parse(s).runId) } catch {} })')"
  fi
  if [ -n "$run" ]; then
    lab down "$run" >/dev/null 2>&1 || true
    echo "demo: lab $run removed"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "demo: starting the lab ..."
t0=$(date +%s%N)
lab up --detach --native --no-strongswan --no-iperf --json >"$tmp/lab.json"
t1=$(date +%s%N)
info="$(tail -n 1 "$tmp/lab.json")"
field() { node -e 'let v = JSON.parse(process.argv[1]); for (const k of process.argv[2].split(".")) v = v[k]; process.stdout.write(String(v))' "$info" "$1"; }
run="$(field runId)"
natns="$(field native.ns)"
url="$(field web.url)bytes/1000000"

cat <<EOF
demo: lab $run up in $(( (t1 - t0) / 1000000 )) ms
  namespaces      $(field namespaces.srv) $(field namespaces.web) $(field namespaces.nat) $(field namespaces.ike)
  OpenVPN server  $(field openvpn.proto) $(field openvpn.host):$(field openvpn.port) in $(field namespaces.srv) (log $(field openvpn.log))
  web host        $(field addresses.web) in $(field namespaces.web), reachable only through the tunnel
  stock client    in $natns, tunnel address $(field native.tunIp), profile $(field native.profile)
  vpnproxy profile (for our client, remote $(field addresses.srv)): $(field profile)
EOF

echo "demo: GET $url through the tunnel (curl in $natns)"
s0=$(date +%s%N)
ip netns exec "$natns" curl -sS --fail --max-time 60 -D "$tmp/headers" -o "$tmp/body" "$url"
s1=$(date +%s%N)
expected="$(lab sha 1000000)"
got="$(sha256sum "$tmp/body" | cut -d' ' -f1)"
header="$(tr -d '\r' <"$tmp/headers" | sed -n 's/^x-sha256: //Ip')"
bytes="$(stat -c %s "$tmp/body")"
echo "  received   $bytes bytes in $(( (s1 - s0) / 1000000 )) ms"
echo "  sha256     $got"
echo "  x-sha256   $header"
echo "  expected   $expected"
if [ "$got" = "$expected" ] && [ "$header" = "$expected" ] && [ "$bytes" = 1000000 ]; then
  echo "demo: OK"
else
  echo "demo: FAILED (body does not match)" >&2
  exit 1
fi
