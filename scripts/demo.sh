#!/usr/bin/env bash
# The demo: vpnproxy's main job against the built-in lab. Starts the lab (a real OpenVPN server in a network
# namespace, a web host and a DNS server behind it, reachable only through the tunnel), runs vpnproxy with its
# HTTP and SOCKS5 proxies against it (no tun device, no root needed by vpnproxy itself), fetches a page and
# /bytes/1000000 through the HTTP proxy with curl (sha256 checked), a name through SOCKS5 (resolved by the
# tunnel's DNS), prints what happened, and removes everything again (also on Ctrl-C or failure).
# Needs root for the lab; run from a clone:
#   sudo bash scripts/demo.sh      (or: npm run demo)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (the lab uses network namespaces); try: sudo bash scripts/demo.sh" >&2
  exit 1
fi

bash scripts/setup.sh

lab() { node --import tsx test/lab/cli.ts "$@"; }
run=""
vpid=""
tmp="$(mktemp -d)"
cleanup() {
  if [ -n "$vpid" ] && kill -0 "$vpid" 2>/dev/null; then
    kill -TERM "$vpid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$vpid" 2>/dev/null || true
    echo "demo: vpnproxy stopped"
  fi
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

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "demo: starting the lab ..."
t0=$(date +%s%N)
lab up --detach --no-strongswan --no-iperf --json >"$tmp/lab.json"
info="$(tail -n 1 "$tmp/lab.json")"
field() { node -e 'let v = JSON.parse(process.argv[1]); for (const k of process.argv[2].split(".")) v = v[k]; process.stdout.write(String(v))' "$info" "$1"; }
run="$(field runId)"
profile="$(field profile)"
web="$(field web.url)"
named="$(field web.nameUrl)"
cat <<EOF2
demo: lab $run up in $(ms "$t0") ms
  OpenVPN server  $(field openvpn.proto) $(field openvpn.host):$(field openvpn.port) in namespace $(field namespaces.srv)
  web host        $(field addresses.web) (and web.lab.test, DNS $(field web.dns)) in $(field namespaces.web), reachable only through the tunnel
  profile         $profile
EOF2

echo "demo: starting vpnproxy: vpnproxy openvpn $profile --http-proxy 127.0.0.1:0 --socks-proxy 127.0.0.1:0 --status 127.0.0.1:0"
t0=$(date +%s%N)
node dist/cli/main.js openvpn "$profile" --http-proxy 127.0.0.1:0 --socks-proxy 127.0.0.1:0 --status 127.0.0.1:0 \
  2>"$tmp/vpnproxy.log" &
vpid=$!
for _ in $(seq 1 300); do
  grep -q '^vpnproxy: ready: ' "$tmp/vpnproxy.log" && break
  if ! kill -0 "$vpid" 2>/dev/null; then
    echo "demo: vpnproxy exited before it was ready:" >&2
    cat "$tmp/vpnproxy.log" >&2
    exit 1
  fi
  sleep 0.1
done
readyline="$(grep '^vpnproxy: ready: ' "$tmp/vpnproxy.log" || true)"
if [ -z "$readyline" ]; then
  echo "demo: vpnproxy was not ready within 30 s:" >&2
  cat "$tmp/vpnproxy.log" >&2
  exit 1
fi
http="$(sed -n 's/.*http-proxy \([0-9.]*:[0-9]*\).*/\1/p' <<<"$readyline")"
socks="$(sed -n 's/.*socks5 \([0-9.]*:[0-9]*\).*/\1/p' <<<"$readyline")"
status="$(sed -n 's/.*status \([0-9.]*:[0-9]*\).*/\1/p' <<<"$readyline")"
echo "demo: vpnproxy ready in $(ms "$t0") ms"
grep '^vpnproxy: ' "$tmp/vpnproxy.log" | sed 's/^/  /'

echo "demo: GET ${web}page through the HTTP proxy (curl -x http://$http)"
curl -sS --fail --max-time 30 -x "http://$http" -o "$tmp/page.html" "${web}page"
echo "  $(stat -c %s "$tmp/page.html") bytes, title: $(sed -n 's:.*<title>\(.*\)</title>.*:\1:p' "$tmp/page.html")"

echo "demo: GET ${web}bytes/1000000 through the HTTP proxy"
s0=$(date +%s%N)
curl -sS --fail --max-time 60 -x "http://$http" -D "$tmp/headers" -o "$tmp/body" "${web}bytes/1000000"
took=$(ms "$s0")
expected="$(lab sha 1000000)"
got="$(sha256sum "$tmp/body" | cut -d' ' -f1)"
header="$(tr -d '\r' <"$tmp/headers" | sed -n 's/^x-sha256: //Ip')"
bytes="$(stat -c %s "$tmp/body")"
echo "  received   $bytes bytes in $took ms"
echo "  sha256     $got"
echo "  x-sha256   $header"
echo "  expected   $expected"

echo "demo: GET ${named}healthz through SOCKS5 (curl --socks5-hostname $socks: the name is resolved by the tunnel's DNS)"
answer="$(curl -sS --fail --max-time 30 --socks5-hostname "$socks" "${named}healthz")"
echo "  answer     $answer"

echo "demo: status endpoint http://$status/status"
curl -sS --fail --max-time 10 "http://$status/status" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const d = JSON.parse(s);
    console.log(`  tunnel     ${d.tunnel.state} ${d.tunnel.address} via ${d.tunnel.server} (${d.tunnel.cipher})`);
    console.log(`  traffic    ${d.traffic.bytesIn} bytes in, ${d.traffic.bytesOut} bytes out`);
    console.log(`  proxied    ${d.proxy.connections.total} connections, ${d.proxy.bytes.down} bytes down`);
  });'
echo "demo: vpnproxy's log of the proxied connections"
grep -E '\[(http-proxy|socks5)\]' "$tmp/vpnproxy.log" | sed -E 's/^[^ ]+ +INFO +/  /' | cut -c1-160

if [ "$got" = "$expected" ] && [ "$header" = "$expected" ] && [ "$bytes" = 1000000 ] && [ "$answer" = ok ]; then
  echo "demo: OK"
else
  echo "demo: FAILED (body or answer does not match)" >&2
  exit 1
fi
