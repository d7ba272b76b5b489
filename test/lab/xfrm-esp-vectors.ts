/**
 * Generator of test/fixtures/esp/linux-xfrm.json: ESP-in-UDP packets made by the Linux kernel's XFRM ESP (an
 * implementation we did not write), with the inner packets the kernel decrypted them to, for
 * test/unit/ipsec/esp-independent-vectors.test.ts. Run as root, once, when the fixture is to be remade:
 *
 *   node --import tsx test/lab/xfrm-esp-vectors.ts [--host | --vm] [--out FILE]
 *
 * What it does, per suite (aes128gcm16, aes256gcm16, chacha20poly1305, aes128-sha1, aes256-sha256,
 * aes256-sha512), in two network namespaces vpx-xfrm-a (192.0.2.1, inner 10.1.0.1) and vpx-xfrm-b
 * (192.0.2.2, inner 10.2.0.1) joined by a veth pair:
 *  - `ip xfrm state` (fixed SPIs, keys derived from fixed labels, replay-window 32, tunnel mode,
 *    `encap espinudp 4500 4500 0.0.0.0`) and `ip xfrm policy` between 10.1.0.0/24 and 10.2.0.0/24, and in each
 *    namespace a UDP socket on port 4500 with UDP_ENCAP_ESPINUDP (what an IKE daemon opens, without which the
 *    kernel does not take ESP from UDP);
 *  - ICMP echo requests of several sizes and a small UDP datagram with known payloads from a to b (b answers the
 *    echoes, and the UDP datagram to a closed port with an ICMP port unreachable, both through the tunnel);
 *  - tcpdump on the veth in both namespaces. In tunnel mode the kernel re-injects a decapsulated packet on the
 *    interface the ESP datagram came in on, so the receiver's capture holds each ESP-in-UDP datagram followed by
 *    the inner IPv4 packet the kernel decrypted it to: that is the expected plaintext, obtained without our code;
 *  - then our OutboundSa seals an echo request under the a→b keys (sequence numbers after the kernel's) and it is
 *    sent from a to b:4500 as a plain UDP datagram: the kernel accepted it if b's capture shows it decrypted to
 *    exactly our inner packet and a's capture shows b's echo reply (`kernelAcceptedOurs`).
 *
 * Extended Sequence Numbers (RFC 4303 §2.2.1, §3.3.2.1), per ESN suite (aes128gcm16, aes256-sha256, aes128-sha1, named
 * `<suite>-esn` in `esnSuites`): the same, with states added with `flag esn replay-window 32 replay-seq 0xfffffffd
 * replay-seq-hi 0 replay-oseq 0xfffffffd replay-oseq-hi 0` (other SPIs and keys), so each sender's packets go
 * 0xfffffffe, 0xffffffff, 0x1_00000000… and are sent as the low halves 0xfffffffe, 0xffffffff, 0, 1…; after each
 * send `ip -s xfrm state` is dumped in both namespaces and the 64-bit number of each packet is taken from the
 * sender's oseq-hi/oseq (checked: it moves by one per packet, ends at start + count, and its low half is the
 * one on the wire). Ours go through a third state in b only (a-to-b direction, reqid 1, its own SPI and keys,
 * replay-seq 0xfffffffd), so that the kernel's own a-to-b packets do not use up its window: our OutboundSa with
 * ESN and lastSeq 0xfffffffd seals ESN_OURS echo requests across the wrap, and `kernelAcceptedOurs` says b
 * decrypted each to exactly our inner packet, answered each, and ended at seq-hi 1.
 *
 * Where: on this machine's kernel if it has XFRM ESP (probed in a namespace), else (or with --vm) inside Debian's
 * kernel package (linux-image-amd64, downloaded with apt-get and unpacked, not installed) booted under QEMU with
 * an initramfs made here: busybox, this machine's iproute2 and tcpdump with their libraries, a small static
 * helper compiled here (the UDP_ENCAP socket, ICMP echo and UDP senders), the ESP and crypto modules. The guest
 * has no network device; its namespaces and traffic end with it. Needs, as Debian packages: iproute2, tcpdump,
 * gcc and libc6-dev, and for the VM busybox-static and qemu-system-x86.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESP_SUITES } from '../../src/crypto/ipsec-algorithms.js';
import { InboundSa, OutboundSa } from '../../src/ipsec/esp-sa.js';
import { buildIpv4, parseIpv4Address } from '../../src/wire/ipv4.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DEFAULT_OUT = join(REPO, 'test/fixtures/esp/linux-xfrm.json');
const NS_A = 'vpx-xfrm-a';
const NS_B = 'vpx-xfrm-b';
const OUTER_A = '192.0.2.1';
const OUTER_B = '192.0.2.2';
const INNER_A = '10.1.0.1';
const INNER_B = '10.2.0.1';
const REPLAY_WINDOW = 32; // the kernel's legacy (non-ESN) replay bitmap holds 32
/** Our sealed echo request continues the a→b SA after this sequence number. */
const OURS_LAST_SEQ = 100;
const OURS_ICMP_ID = 0x7670;
const OURS_SPORT = 4501;
/** ESN: every ESN state starts with its replay counters (seq and oseq) here, high half 0. */
const ESN_START_SEQ = 0xfffffffd;
/** ESN: how many echo requests our OutboundSa seals across the wrap. */
const ESN_OURS = 4;
const ESN_SUITES = ['aes128gcm16', 'aes256-sha256', 'aes128-sha1'];
const ESN_REPLAY_ARGS = ['flag', 'esn', 'replay-seq', `0x${ESN_START_SEQ.toString(16)}`, 'replay-seq-hi', '0', 'replay-oseq', `0x${ESN_START_SEQ.toString(16)}`, 'replay-oseq-hi', '0'];
const TWO_32 = 0x1_0000_0000;

interface SuiteDef {
  name: string;
  /** `ip xfrm state` algorithm arguments. */
  algo: (enc: string, integ: string) => string[];
}
const SUITES: SuiteDef[] = [
  { name: 'aes128gcm16', algo: (e) => ['aead', 'rfc4106(gcm(aes))', `0x${e}`, '128'] },
  { name: 'aes256gcm16', algo: (e) => ['aead', 'rfc4106(gcm(aes))', `0x${e}`, '128'] },
  { name: 'chacha20poly1305', algo: (e) => ['aead', 'rfc7539esp(chacha20,poly1305)', `0x${e}`, '128'] },
  { name: 'aes128-sha1', algo: (e, i) => ['enc', 'cbc(aes)', `0x${e}`, 'auth-trunc', 'hmac(sha1)', `0x${i}`, '96'] },
  { name: 'aes256-sha256', algo: (e, i) => ['enc', 'cbc(aes)', `0x${e}`, 'auth-trunc', 'hmac(sha256)', `0x${i}`, '128'] },
  { name: 'aes256-sha512', algo: (e, i) => ['enc', 'cbc(aes)', `0x${e}`, 'auth-trunc', 'hmac(sha512)', `0x${i}`, '256'] },
];

/** Echo requests a→b: (sequence, payload); sizes chosen so the ESP padding differs. */
const PINGS: { seq: number; payload: Buffer }[] = [
  { seq: 1, payload: Buffer.from('vpnproxy linux-xfrm echo 1') },
  { seq: 2, payload: Buffer.from('vpnproxy linux-xfrm echo 2 / seventeen+') },
  { seq: 3, payload: Buffer.from(Array.from({ length: 56 }, (_, i) => (0x20 + i) & 0xff)) },
  { seq: 4, payload: Buffer.from('x') },
];
const UDP_PAYLOAD = Buffer.from('vpnproxy linux-xfrm udp datagram to a closed port\n');
const UDP_SPORT = 5000;
const UDP_DPORT = 7;
const OURS_PAYLOAD = Buffer.from('sealed by vpnproxy OutboundSa, opened by Linux XFRM');

// ---- keys and packets we make ----

function derive(label: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0, block = 0; i < n; block++) {
    const h = createHash('sha256').update(`vpnproxy linux-xfrm ${label} ${block}`).digest();
    i += h.copy(out, i, 0, Math.min(h.length, n - i));
  }
  return out;
}

interface SaDef {
  /** 'ours' (ESN only): a-to-b, in b only, for what our OutboundSa seals. */
  direction: 'a-to-b' | 'b-to-a' | 'ours';
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  encKey: Buffer;
  integKey: Buffer;
}

function mkSa(name: string, label: string, direction: SaDef['direction'], spi: number, reqid: number): SaDef {
  const suite = ESP_SUITES[name]!;
  return {
    direction,
    src: direction === 'b-to-a' ? OUTER_B : OUTER_A,
    dst: direction === 'b-to-a' ? OUTER_A : OUTER_B,
    spi,
    reqid,
    encKey: derive(`${label} ${direction} enc`, suite.encKeyBytes + suite.saltBytes),
    integKey: derive(`${label} ${direction} integ`, suite.integKeyBytes),
  };
}

function sasOf(index: number, name: string): [SaDef, SaDef] {
  return [mkSa(name, name, 'a-to-b', 0xc0de0100 + index, 1), mkSa(name, name, 'b-to-a', 0xc0de0200 + index, 2)];
}

/** An ESN suite: its three states and the datagrams our OutboundSa sealed for the 'ours' one. */
interface EsnPlan {
  def: SuiteDef;
  /** The fixture's name, `<suite>-esn` (what espSuite() reads as the suite with ESN). */
  name: string;
  ab: SaDef;
  ba: SaDef;
  ours: SaDef;
  oursInner: Buffer[];
  oursSealed: Buffer[];
}

function esnPlanOf(index: number, base: string): EsnPlan {
  const def = SUITES.find((d) => d.name === base)!;
  const name = `${base}-esn`;
  const ours = mkSa(base, name, 'ours', 0xc0de0500 + index, 1);
  const out = new OutboundSa({ spi: ours.spi, suite: ESP_SUITES[base]!, esn: true, encKey: ours.encKey, integKey: ours.integKey, lastSeq: ESN_START_SEQ });
  const oursInner = Array.from({ length: ESN_OURS }, (_, k) => oursInnerOf(k + 1, Buffer.from(`${OURS_PAYLOAD.toString()} (ESN ${k + 1})`)));
  return {
    def,
    name,
    ab: mkSa(base, name, 'a-to-b', 0xc0de0300 + index, 1),
    ba: mkSa(base, name, 'b-to-a', 0xc0de0400 + index, 2),
    ours,
    oursInner,
    oursSealed: oursInner.map((p) => Buffer.from(out.seal(p))),
  };
}

function icmpEcho(type: number, id: number, seq: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b[0] = type;
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(seq, 6);
  b.set(payload, 8);
  b.writeUInt16BE(checksum(b), 2);
  return b;
}

function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An inner echo request we seal ourselves. */
function oursInnerOf(seq: number, payload: Buffer): Buffer {
  const icmp = icmpEcho(8, OURS_ICMP_ID, seq, payload);
  return Buffer.from(buildIpv4({ src: parseIpv4Address(INNER_A), dst: parseIpv4Address(INNER_B), protocol: 1, id: 0x7670 + seq - 1, ttl: 64 }, icmp));
}
const oursInner = () => oursInnerOf(1, OURS_PAYLOAD);

// ---- the script that runs in the namespaces (POSIX sh; busybox in the VM) ----

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function stateAdd(ns: string, sa: SaDef, def: SuiteDef, extra: string[] = []): string {
  return [
    '$IP', '-n', ns, 'xfrm', 'state', 'add', 'src', sa.src, 'dst', sa.dst, 'proto', 'esp', 'spi', `0x${sa.spi.toString(16)}`, 'reqid', String(sa.reqid),
    'mode', 'tunnel', 'replay-window', String(REPLAY_WINDOW), ...extra, ...def.algo(sa.encKey.toString('hex'), sa.integKey.toString('hex')).map(q),
    'encap', 'espinudp', '4500', '4500', '0.0.0.0',
  ].join(' ');
}

function script(sas: Map<string, [SaDef, SaDef]>, ours: Map<string, Buffer>, esn: EsnPlan[]): string {
  const L: string[] = [];
  L.push(
    'set -u',
    `A=${NS_A}; B=${NS_B}`,
    'PIDS=""',
    'say() { echo "xfrm-vectors: $*"; }',
    'cleanup() { for p in $PIDS; do kill $p 2>/dev/null; done; $IP netns del $A 2>/dev/null; $IP netns del $B 2>/dev/null; }',
    'trap cleanup EXIT',
    'die() { say "FAILED: $*"; exit 1; }',
    '$IP netns add $A || die "netns add"',
    '$IP netns add $B || die "netns add"',
    '$IP link add veth-a netns $A type veth peer name veth-b netns $B || die "veth"',
    `$IP -n $A addr add ${OUTER_A}/24 dev veth-a; $IP -n $B addr add ${OUTER_B}/24 dev veth-b`,
    `$IP -n $A addr add ${INNER_A}/32 dev lo; $IP -n $B addr add ${INNER_B}/32 dev lo`,
    'for n in $A $B; do $IP -n $n link set lo up; done',
    '$IP -n $A link set veth-a up; $IP -n $B link set veth-b up',
    `$IP -n $A route add 10.2.0.0/24 dev veth-a src ${INNER_A} || die "route a"`,
    `$IP -n $B route add 10.1.0.0/24 dev veth-b src ${INNER_B} || die "route b"`,
    `$IP -n $A xfrm policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out tmpl src ${OUTER_A} dst ${OUTER_B} proto esp reqid 1 mode tunnel || die "policy"`,
    `$IP -n $A xfrm policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in tmpl src ${OUTER_B} dst ${OUTER_A} proto esp reqid 2 mode tunnel || die "policy"`,
    `$IP -n $B xfrm policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir out tmpl src ${OUTER_B} dst ${OUTER_A} proto esp reqid 2 mode tunnel || die "policy"`,
    `$IP -n $B xfrm policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir in tmpl src ${OUTER_A} dst ${OUTER_B} proto esp reqid 1 mode tunnel || die "policy"`,
    'for n in $A $B; do $IP netns exec $n $H listen 4500 > $OUT/listen-$n.log 2>&1 & PIDS="$PIDS $!"; done',
    'sleep 1',
    'grep -q listening $OUT/listen-$A.log && grep -q listening $OUT/listen-$B.log || die "UDP_ENCAP socket: $(cat $OUT/listen-*.log)"',
    '$IP netns exec $A ping -c 1 -W 5 192.0.2.2 >/dev/null 2>&1 || say "note: no plain ping a->b"',
    // tcpdump on one namespace's veth; waits until it listens
    'cap() { $IP netns exec $1 $TCPDUMP -n -U -s 0 -Z root -i $2 -w $3 > $3.log 2>&1 & CAP="$CAP $!"; i=0; while ! grep -q listening $3.log 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && die "tcpdump: $(cat $3.log)"; sleep 0.1; done; }',
  );
  SUITES.forEach((def) => {
    const [ab, ba] = sas.get(def.name)!;
    const st = (ns: string, sa: SaDef) => stateAdd(ns, sa, def);
    const s = def.name;
    L.push(
      `say "suite ${s}"`,
      `if ${st('$A', ab)} 2>$OUT/${s}.err && ${st('$A', ba)} 2>>$OUT/${s}.err && ${st('$B', ab)} 2>>$OUT/${s}.err && ${st('$B', ba)} 2>>$OUT/${s}.err; then`,
      '  CAP=""',
      `  cap $A veth-a $OUT/${s}.a.pcap; cap $B veth-b $OUT/${s}.b.pcap`,
      ...PINGS.map((p) => `  $IP netns exec $A $H ping ${INNER_A} ${INNER_B} ${0x7600 + SUITES.indexOf(def)} ${p.seq} ${p.payload.toString('hex')} || say "ping failed"; sleep 0.3`),
      `  $IP netns exec $A $H udp ${INNER_A} ${UDP_SPORT} ${INNER_B} ${UDP_DPORT} ${UDP_PAYLOAD.toString('hex')} || say "udp failed"; sleep 0.5`,
      `  $IP netns exec $A $H udp ${OUTER_A} ${OURS_SPORT} ${OUTER_B} 4500 ${Buffer.from(ours.get(s)!).toString('hex')} || say "sending ours failed"; sleep 1.5`,
      '  for p in $CAP; do kill -INT $p; done; for p in $CAP; do wait $p; done',
      `  $IP -n $B -s xfrm state > $OUT/${s}.b.state 2>&1`,
      `  $IP netns exec $B cat /proc/net/xfrm_stat > $OUT/${s}.b.xfrmstat 2>&1`,
      `  $IP netns exec $A cat /proc/net/xfrm_stat > $OUT/${s}.a.xfrmstat 2>&1`,
      'else',
      `  say "suite ${s} refused by the kernel: $(cat $OUT/${s}.err)"`,
      'fi',
      '$IP -n $A xfrm state flush; $IP -n $B xfrm state flush',
    );
  });
  // ESN: states near the 2^32 wrap; `ip -s xfrm state` of both namespaces after every datagram sent
  L.push('snap() { $IP -n $A -s xfrm state > $OUT/$1.a.state 2>&1; $IP -n $B -s xfrm state > $OUT/$1.b.state 2>&1; }');
  esn.forEach((e, i) => {
    const s = e.name;
    const st = (ns: string, sa: SaDef) => stateAdd(ns, sa, e.def, ESN_REPLAY_ARGS);
    let k = 0;
    const snap = () => `snap ${s}.snap${k++}`;
    L.push(
      `say "suite ${s}"`,
      `if ${st('$A', e.ab)} 2>$OUT/${s}.err && ${st('$A', e.ba)} 2>>$OUT/${s}.err && ${st('$B', e.ab)} 2>>$OUT/${s}.err && ${st('$B', e.ba)} 2>>$OUT/${s}.err && ${st('$B', e.ours)} 2>>$OUT/${s}.err; then`,
      '  CAP=""',
      `  cap $A veth-a $OUT/${s}.a.pcap; cap $B veth-b $OUT/${s}.b.pcap`,
      `  ${snap()}`,
      ...PINGS.map((p) => `  $IP netns exec $A $H ping ${INNER_A} ${INNER_B} ${0x7680 + i} ${p.seq} ${p.payload.toString('hex')} || say "ping failed"; sleep 0.3; ${snap()}`),
      `  $IP netns exec $A $H udp ${INNER_A} ${UDP_SPORT} ${INNER_B} ${UDP_DPORT} ${UDP_PAYLOAD.toString('hex')} || say "udp failed"; sleep 0.5; ${snap()}`,
      ...e.oursSealed.map((d) => `  $IP netns exec $A $H udp ${OUTER_A} ${OURS_SPORT} ${OUTER_B} 4500 ${d.toString('hex')} || say "sending ours failed"; sleep 0.5; ${snap()}`),
      `  sleep 1; ${snap()}`,
      '  for p in $CAP; do kill -INT $p; done; for p in $CAP; do wait $p; done',
      `  echo ${k} > $OUT/${s}.snaps`,
      `  $IP netns exec $B cat /proc/net/xfrm_stat > $OUT/${s}.b.xfrmstat 2>&1`,
      `  $IP netns exec $A cat /proc/net/xfrm_stat > $OUT/${s}.a.xfrmstat 2>&1`,
      'else',
      `  say "suite ${s} refused by the kernel: $(cat $OUT/${s}.err)"`,
      'fi',
      '$IP -n $A xfrm state flush; $IP -n $B xfrm state flush',
    );
  });
  L.push('say "done"', 'echo ok > $OUT/done');
  return L.join('\n') + '\n';
}

// ---- the helper: UDP_ENCAP socket, ICMP echo and UDP senders (our own code, compiled here, static) ----

const HELPER_C = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif
#define UDP_ENCAP_ESPINUDP 2

static size_t unhex(const char *s, unsigned char *out, size_t max) {
  size_t n = strlen(s) / 2, i;
  if (n > max) n = max;
  for (i = 0; i < n; i++) { unsigned v; sscanf(s + 2 * i, "%2x", &v); out[i] = (unsigned char)v; }
  return n;
}
static unsigned short csum(const unsigned char *b, size_t n) {
  unsigned long s = 0; size_t i;
  for (i = 0; i + 1 < n; i += 2) s += (unsigned)(b[i] << 8 | b[i + 1]);
  if (n & 1) s += (unsigned)(b[n - 1] << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (unsigned short)~s;
}
static struct sockaddr_in addr(const char *ip, int port) {
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.sin_family = AF_INET; a.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); exit(2); }
  return a;
}
static void fail(const char *what) { fprintf(stderr, "%s: %s\n", what, strerror(errno)); exit(1); }

int main(int argc, char **argv) {
  static unsigned char buf[65536];
  if (argc == 3 && !strcmp(argv[1], "listen")) {
    int s = socket(AF_INET, SOCK_DGRAM, 0), t = UDP_ENCAP_ESPINUDP, one = 1;
    struct sockaddr_in a = addr("0.0.0.0", atoi(argv[2]));
    if (s < 0) fail("socket");
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a)) fail("bind");
    if (setsockopt(s, IPPROTO_UDP, UDP_ENCAP, &t, sizeof t)) fail("setsockopt UDP_ENCAP");
    printf("listening on %s with UDP_ENCAP_ESPINUDP\n", argv[2]); fflush(stdout);
    for (;;) if (recv(s, buf, sizeof buf, 0) < 0 && errno != EINTR) fail("recv");
  }
  if (argc == 7 && !strcmp(argv[1], "ping")) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    struct sockaddr_in src = addr(argv[2], 0), dst = addr(argv[3], 0);
    size_t n = 8 + unhex(argv[6], buf + 8, sizeof buf - 8);
    unsigned short c;
    if (s < 0) fail("raw socket");
    if (bind(s, (struct sockaddr *)&src, sizeof src)) fail("bind");
    buf[0] = 8; buf[1] = 0; buf[2] = buf[3] = 0;
    buf[4] = (unsigned char)(atoi(argv[4]) >> 8); buf[5] = (unsigned char)atoi(argv[4]);
    buf[6] = (unsigned char)(atoi(argv[5]) >> 8); buf[7] = (unsigned char)atoi(argv[5]);
    c = csum(buf, n); buf[2] = (unsigned char)(c >> 8); buf[3] = (unsigned char)c;
    if (sendto(s, buf, n, 0, (struct sockaddr *)&dst, sizeof dst) != (ssize_t)n) fail("sendto");
    return 0;
  }
  if (argc == 7 && !strcmp(argv[1], "udp")) {
    int s = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    struct sockaddr_in src = addr(argv[2], atoi(argv[3])), dst = addr(argv[4], atoi(argv[5]));
    size_t n = unhex(argv[6], buf, sizeof buf);
    if (s < 0) fail("socket");
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&src, sizeof src)) fail("bind");
    if (sendto(s, buf, n, 0, (struct sockaddr *)&dst, sizeof dst) != (ssize_t)n) fail("sendto");
    return 0;
  }
  fprintf(stderr, "usage: listen PORT | ping SRC DST ID SEQ HEX | udp SRC SPORT DST DPORT HEX\n");
  return 2;
}
`;

// ---- small tools ----

function sh(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 256 * 1024 * 1024 });
  const out = { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  if (out.code !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ').slice(0, 200)}: exit ${out.code}: ${out.stderr.trim().slice(-800)}`);
  return out;
}
const which = (tool: string) => sh('sh', ['-c', `command -v ${tool}`], { allowFail: true }).stdout.trim();
const log = (s: string) => process.stderr.write(`xfrm-esp-vectors: ${s}\n`);

/** Whether this kernel does XFRM ESP (a CBC/HMAC state in a throw-away namespace); the error otherwise. */
function probeHostEsp(): string | null {
  const ns = 'vpx-xfrm-probe';
  sh('ip', ['netns', 'del', ns], { allowFail: true });
  sh('ip', ['netns', 'add', ns]);
  try {
    const r = sh('ip', ['-n', ns, 'xfrm', 'state', 'add', 'src', OUTER_A, 'dst', OUTER_B, 'proto', 'esp', 'spi', '0x100', 'mode', 'tunnel',
      'enc', 'cbc(aes)', `0x${'00'.repeat(16)}`, 'auth-trunc', 'hmac(sha1)', `0x${'00'.repeat(20)}`, '96', 'encap', 'espinudp', '4500', '4500', '0.0.0.0'], { allowFail: true });
    return r.code === 0 ? null : r.stderr.trim() || `exit ${r.code}`;
  } finally {
    sh('ip', ['netns', 'del', ns], { allowFail: true });
  }
}

/** newc cpio archive (the initramfs format). */
class Cpio {
  private parts: Buffer[] = [];
  private ino = 1;
  private seen = new Set<string>();
  dir(path: string): void {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (this.seen.has(p)) continue;
      this.seen.add(p);
      this.entry(p, 0o040755, Buffer.alloc(0));
    }
  }
  file(path: string, data: Buffer, mode = 0o755): void {
    const p = path.replace(/^\/+/, '');
    if (this.seen.has(p)) return;
    this.dir(dirname(p) === '.' ? '' : dirname(p));
    this.seen.add(p);
    this.entry(p, 0o100000 | mode, data);
  }
  symlink(path: string, target: string): void {
    const p = path.replace(/^\/+/, '');
    if (this.seen.has(p)) return;
    this.dir(dirname(p) === '.' ? '' : dirname(p));
    this.seen.add(p);
    this.entry(p, 0o120777, Buffer.from(target));
  }
  private entry(name: string, mode: number, data: Buffer): void {
    const h8 = (n: number) => n.toString(16).padStart(8, '0');
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [this.ino++, mode, 0, 0, mode & 0o040000 ? 2 : 1, 0, data.length, 0, 0, 0, 0, nameBuf.length, 0];
    const head = Buffer.from(`070701${fields.map(h8).join('')}`);
    const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
    this.parts.push(head, nameBuf, pad(head.length + nameBuf.length), data, pad(data.length));
  }
  finish(): Buffer {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0));
    return Buffer.concat(this.parts);
  }
}

/** A binary and the shared libraries ldd names for it, at the paths ldd prints. */
function addDynamic(cpio: Cpio, bin: string, at: string): void {
  cpio.file(at, readFileSync(realpathSync(bin)));
  for (const line of sh('ldd', [bin]).stdout.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) cpio.file(m[1]!, readFileSync(realpathSync(m[1]!)));
  }
}

/** Debian's kernel package, unpacked (not installed) into a cache directory: vmlinuz and the modules tree. */
function debianKernel(cacheDir: string): { vmlinuz: string; modules: string; release: string; pkg: string; version: string } {
  mkdirSync(cacheDir, { recursive: true });
  let deb = process.env.XFRM_KERNEL_DEB;
  if (!deb) {
    const dep = /Depends:\s*(linux-image-\S+)/.exec(sh('apt-cache', ['depends', 'linux-image-amd64']).stdout);
    if (!dep) throw new Error('apt-cache depends linux-image-amd64 names no kernel package (run apt-get update)');
    const have = readdirSync(cacheDir).find((f) => f.startsWith(`${dep[1]}_`) && f.endsWith('.deb'));
    if (!have) {
      log(`downloading ${dep[1]} with apt-get download`);
      sh('apt-get', ['download', '-o', 'APT::Sandbox::User=root', dep[1]!], { cwd: cacheDir, timeoutMs: 600_000 });
    }
    deb = join(cacheDir, readdirSync(cacheDir).find((f) => f.startsWith(`${dep[1]}_`) && f.endsWith('.deb'))!);
  }
  const root = join(cacheDir, 'root');
  if (!existsSync(join(root, 'boot'))) sh('dpkg-deb', ['-x', deb, root], { timeoutMs: 300_000 });
  const vmlinuz = readdirSync(join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`${deb} holds no boot/vmlinuz-*`);
  const release = vmlinuz.slice('vmlinuz-'.length);
  const field = (f: string) => sh('dpkg-deb', ['-f', deb!, f]).stdout.trim();
  return { vmlinuz: join(root, 'boot', vmlinuz), modules: join(root, 'lib/modules', release), release, pkg: field('Package'), version: field('Version') };
}

const MODULE_DIRS = ['kernel/crypto', 'kernel/lib', 'kernel/arch/x86/crypto', 'kernel/net/ipv4', 'kernel/net/xfrm', 'kernel/drivers/net/veth.ko'];
const PRELOAD = ['xfrm_user', 'esp4', 'veth', 'gcm', 'ghash-generic', 'ctr', 'seqiv', 'echainiv', 'authenc', 'authencesn', 'sha512_generic', 'chacha20poly1305', 'chacha_generic', 'poly1305_generic', 'aesni-intel'];

function addTree(cpio: Cpio, from: string, at: string): void {
  const st = lstatSync(from);
  if (st.isDirectory()) for (const f of readdirSync(from)) addTree(cpio, join(from, f), join(at, f));
  else if (st.isSymbolicLink()) cpio.symlink(at, readlinkSync(from));
  else if (st.isFile()) cpio.file(at, readFileSync(from), 0o644);
}

/** Boots Debian's kernel with the script and returns the files the script wrote. */
function runInVm(work: string, runSh: string, helper: string): { files: Map<string, Buffer>; kernel: string } {
  for (const t of ['qemu-system-x86_64', 'busybox']) if (!which(t)) throw new Error(`${t} not found: apt-get install qemu-system-x86 busybox-static`);
  const busybox = which('busybox');
  if (!/statically linked|static-pie/.test(sh('file', ['-L', busybox], { allowFail: true }).stdout) && !busybox.includes('static')) log(`note: ${busybox} may not be static (busybox-static is)`);
  const k = debianKernel(process.env.XFRM_KERNEL_CACHE ?? join(tmpdir(), 'vpx-xfrm-kernel'));
  log(`guest kernel ${k.pkg} ${k.version}`);
  const cpio = new Cpio();
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'out', 'sbin', 'etc', 'var']) cpio.dir(d);
  cpio.symlink('var/run', '../run');
  cpio.file('bin/busybox', readFileSync(realpathSync(busybox)));
  cpio.symlink('sbin/modprobe', '../bin/busybox');
  cpio.file('etc/passwd', Buffer.from('root:x:0:0:root:/:/bin/sh\n'), 0o644);
  cpio.file('etc/group', Buffer.from('root:x:0:\n'), 0o644);
  addDynamic(cpio, which('ip'), 'usr/sbin/ip');
  addDynamic(cpio, which('tcpdump'), 'usr/bin/tcpdump');
  cpio.file('bin/xfrm-helper', readFileSync(helper));
  cpio.file('xfrm-run.sh', Buffer.from(runSh));
  const modRoot = `lib/modules/${k.release}`;
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) if (existsSync(join(k.modules, f))) cpio.file(`${modRoot}/${f}`, readFileSync(join(k.modules, f)), 0o644);
  for (const d of MODULE_DIRS) if (existsSync(join(k.modules, d))) addTree(cpio, join(k.modules, d), `${modRoot}/${d}`);
  cpio.file(
    'init',
    Buffer.from(
      [
        '#!/bin/busybox sh',
        '/bin/busybox --install -s /bin',
        'export PATH=/usr/sbin:/usr/bin:/sbin:/bin',
        'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp',
        'depmod',
        `for m in ${PRELOAD.join(' ')}; do modprobe $m 2>/dev/null || echo "xfrm-vectors: note: modprobe $m failed"; done`,
        'uname -r > /out/uname',
        'grep -E "^name" /proc/crypto | sort -u > /out/crypto',
        'IP=/usr/sbin/ip TCPDUMP=/usr/bin/tcpdump H=/bin/xfrm-helper OUT=/out sh /xfrm-run.sh > /out/run.log 2>&1',
        'cat /out/run.log',
        'for f in /out/*; do echo "=== ${f#/out/}"; od -An -tx1 -v "$f"; done > /dev/ttyS1',
        'echo "=== END" > /dev/ttyS1',
        'sync; poweroff -f',
      ].join('\n') + '\n',
    ),
  );
  const initrd = join(work, 'initramfs.cpio');
  writeFileSync(initrd, cpio.finish());
  const consoleLog = join(work, 'console.log');
  const outTxt = join(work, 'out.txt');
  log(`booting ${k.release} under QEMU (TCG; KVM is not used)`);
  const r = sh(
    'qemu-system-x86_64',
    ['-accel', 'tcg,thread=multi', '-smp', '2', '-cpu', 'max', '-m', '1024', '-display', 'none', '-monitor', 'none', '-no-reboot', '-nic', 'none',
      '-kernel', k.vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet',
      '-serial', `file:${consoleLog}`, '-serial', `file:${outTxt}`],
    { allowFail: true, timeoutMs: 15 * 60_000 },
  );
  const text = existsSync(outTxt) ? readFileSync(outTxt, 'latin1') : '';
  if (!text.includes('=== END')) {
    throw new Error(`the VM ended (exit ${r.code}) without its results: ${r.stderr.trim().slice(-400)}\n${existsSync(consoleLog) ? readFileSync(consoleLog, 'latin1').slice(-3000) : ''}`);
  }
  const files = new Map<string, Buffer>();
  for (const chunk of text.split('=== ').slice(1)) {
    const nl = chunk.indexOf('\n');
    const name = chunk.slice(0, nl).trim();
    if (name === 'END') break;
    files.set(name, Buffer.from(chunk.slice(nl + 1).replace(/[^0-9a-f]/gi, ''), 'hex'));
  }
  return { files, kernel: `${k.release} (Debian ${k.pkg} ${k.version}, booted under QEMU TCG)` };
}

function runOnHost(work: string, runSh: string, helper: string): { files: Map<string, Buffer>; kernel: string } {
  const out = join(work, 'out');
  mkdirSync(out);
  const scriptPath = join(work, 'xfrm-run.sh');
  writeFileSync(scriptPath, runSh);
  try {
    const r = sh('sh', [scriptPath], { allowFail: true, timeoutMs: 10 * 60_000, env: { ...process.env, IP: which('ip'), TCPDUMP: which('tcpdump'), H: helper, OUT: out } });
    writeFileSync(join(out, 'run.log'), r.stdout + r.stderr);
  } finally {
    sh('ip', ['netns', 'del', NS_A], { allowFail: true });
    sh('ip', ['netns', 'del', NS_B], { allowFail: true });
  }
  const files = new Map<string, Buffer>();
  for (const f of readdirSync(out)) files.set(f, readFileSync(join(out, f)));
  return { files, kernel: `${sh('uname', ['-r']).stdout.trim()} (this machine's kernel)` };
}

// ---- reading the captures ----

interface Frame {
  ip: Buffer;
}

/** IPv4 packets of a pcap (Ethernet or Linux cooked link types). */
function pcapIpv4(buf: Buffer): Frame[] {
  if (buf.length < 24) throw new Error('pcap too short');
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20);
  const frames: Frame[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const incl = u32(o + 8);
    const data = buf.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    let ip: Buffer | undefined;
    if (linktype === 1 && data.length >= 14 && data.readUInt16BE(12) === 0x0800) ip = data.subarray(14);
    else if (linktype === 113 && data.length >= 16 && data.readUInt16BE(14) === 0x0800) ip = data.subarray(16);
    else if (linktype === 101 || linktype === 12) ip = data;
    if (ip && ip.length >= 20 && ip[0]! >> 4 === 4) frames.push({ ip: Buffer.from(ip.subarray(0, Math.min(ip.length, ip.readUInt16BE(2)))) });
  }
  return frames;
}

const ipStr = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

interface Captured {
  /** ESP-in-UDP datagrams received by this namespace, each with the inner packet the kernel decrypted it to. */
  pairs: { udp: Buffer; spi: number; sport: number; inner: Buffer | undefined }[];
}

/** On the receiver's capture: ESP-in-UDP to `outerDst`:4500 with one of `spis`, each paired with the next decapsulated inner packet. */
function received(frames: Frame[], outerDst: string, spis: number[], innerSrcNet: string, innerDst: string): Captured {
  const pairs: Captured['pairs'] = [];
  const pending: Captured['pairs'] = [];
  for (const { ip } of frames) {
    const ihl = (ip[0]! & 15) * 4;
    const proto = ip[9]!;
    const src = ipStr(ip, 12);
    const dst = ipStr(ip, 16);
    if (proto === 17 && dst === outerDst && ip.readUInt16BE(ihl + 2) === 4500) {
      const udpLen = ip.readUInt16BE(ihl + 4);
      const payload = Buffer.from(ip.subarray(ihl + 8, ihl + udpLen));
      if (payload.length >= 8 && spis.includes(payload.readUInt32BE(0))) {
        const p = { udp: payload, spi: payload.readUInt32BE(0), sport: ip.readUInt16BE(ihl), inner: undefined as Buffer | undefined };
        pairs.push(p);
        pending.push(p);
      }
    } else if (src.startsWith(innerSrcNet) && dst === innerDst) {
      const p = pending.shift();
      if (!p) throw new Error(`an inner packet ${src} > ${dst} without an ESP datagram before it`);
      p.inner = ip;
    }
  }
  return { pairs };
}

function describeInner(p: Buffer): string {
  const ihl = (p[0]! & 15) * 4;
  if (p[9] === 1) {
    const t = p[ihl]!;
    if (t === 8 || t === 0) return `icmp echo ${t === 8 ? 'request' : 'reply'} id 0x${p.readUInt16BE(ihl + 4).toString(16)} seq ${p.readUInt16BE(ihl + 6)}, ${p.length - ihl - 8} data bytes`;
    return `icmp type ${t} code ${p[ihl + 1]}`;
  }
  if (p[9] === 17) return `udp ${p.readUInt16BE(ihl)} > ${p.readUInt16BE(ihl + 2)}, ${p.readUInt16BE(ihl + 4) - 8} data bytes`;
  return `protocol ${p[9]}`;
}

// ---- ESN: the kernel's replay counters, and one suite's fixture entry ----

interface EsnCounters {
  seqHi: number;
  seq: number;
  oseqHi: number;
  oseq: number;
}
const full = (hi: number, lo: number) => hi * TWO_32 + lo;

/** `ip -s xfrm state` of one namespace: the ESN replay counters ("anti-replay esn context") by SPI. */
function esnCounters(text: string): Map<number, EsnCounters> {
  const m = new Map<number, EsnCounters>();
  for (const block of text.split(/^(?=src )/m)) {
    const spi = /\bspi 0x([0-9a-f]+)/.exec(block);
    const c = /seq-hi 0x([0-9a-f]+), seq 0x([0-9a-f]+),? oseq-hi 0x([0-9a-f]+), oseq 0x([0-9a-f]+)/.exec(block);
    if (spi && c) m.set(parseInt(spi[1]!, 16), { seqHi: parseInt(c[1]!, 16), seq: parseInt(c[2]!, 16), oseqHi: parseInt(c[3]!, 16), oseq: parseInt(c[4]!, 16) });
  }
  return m;
}

/**
 * The 64-bit numbers the sender's kernel gave its datagrams, from its oseq-hi/oseq in the snapshots: they
 * start at ESN_START_SEQ, move by at most one per send, end at the start plus the number of datagrams, and
 * packet k (in the order the receiver captured them, which is the order sent on the veth) is start + 1 + k,
 * whose low half must be on the wire. A string saying what disagreed otherwise.
 */
function kernelSeqs(snaps: Map<number, EsnCounters>[], spi: number, wire: Buffer[]): number[] | string {
  const o = snaps.map((m) => m.get(spi)).map((c) => (c ? full(c.oseqHi, c.oseq) : NaN));
  if (o.some(Number.isNaN)) return `no ESN replay state for SPI 0x${spi.toString(16)} in a snapshot`;
  if (o[0] !== ESN_START_SEQ) return `SPI 0x${spi.toString(16)} started at oseq 0x${o[0]!.toString(16)}, not 0x${ESN_START_SEQ.toString(16)}`;
  for (let i = 1; i < o.length; i++) if (o[i]! < o[i - 1]!) return `SPI 0x${spi.toString(16)}: oseq went back`;
  if (o.at(-1)! - o[0]! !== wire.length) return `SPI 0x${spi.toString(16)}: oseq moved by ${o.at(-1)! - o[0]!} but ${wire.length} datagrams were captured`;
  const seqs = wire.map((_, k) => ESN_START_SEQ + 1 + k);
  for (const [k, w] of wire.entries()) {
    if (w.readUInt32BE(4) !== seqs[k]! % TWO_32) return `SPI 0x${spi.toString(16)} datagram ${k}: low half 0x${w.readUInt32BE(4).toString(16)} on the wire, 0x${(seqs[k]! % TWO_32).toString(16)} expected`;
  }
  for (const v of o) if (v > ESN_START_SEQ && !seqs.includes(v)) return `SPI 0x${spi.toString(16)}: snapshot oseq 0x${v.toString(16)} is no captured datagram's`;
  return seqs;
}

function esnSuite(e: EsnPlan, files: Map<string, Buffer>): { entry: Record<string, unknown> } | { reason: string } {
  const s = e.name;
  if (!files.has(`${s}.a.pcap`) || !files.has(`${s}.b.pcap`)) {
    const reason = (files.get(`${s}.err`)?.toString('utf8').trim() || 'no capture').split('\n')[0]!;
    return { reason: `the kernel refused the XFRM state: ${reason}` };
  }
  const n = Number(files.get(`${s}.snaps`)?.toString('utf8').trim() ?? 0);
  const snap = (ns: 'a' | 'b') => Array.from({ length: n }, (_, k) => esnCounters(files.get(`${s}.snap${k}.${ns}.state`)?.toString('utf8') ?? ''));
  const snapA = snap('a');
  const snapB = snap('b');
  const capA = pcapIpv4(files.get(`${s}.a.pcap`)!);
  const capB = pcapIpv4(files.get(`${s}.b.pcap`)!);
  const inB = received(capB, OUTER_B, [e.ab.spi, e.ours.spi], '10.1.0.', INNER_B).pairs;
  const inA = received(capA, OUTER_A, [e.ba.spi], '10.2.0.', INNER_A).pairs;
  const kernelAb = inB.filter((p) => p.spi === e.ab.spi);
  const oursRx = inB.filter((p) => p.spi === e.ours.spi);
  const state = () => `a:\n${files.get(`${s}.snap${n - 1}.a.state`)?.toString('utf8') ?? ''}\nb:\n${files.get(`${s}.snap${n - 1}.b.state`)?.toString('utf8') ?? ''}\n${files.get(`${s}.b.xfrmstat`)?.toString('utf8') ?? ''}`;
  if (kernelAb.length < PINGS.length + 1) {
    log(`${s}: state:\n${state()}`);
    return { reason: `only ${kernelAb.length} a-to-b ESP datagrams captured (${PINGS.length + 1} sent)` };
  }
  const undecrypted = [...kernelAb, ...inA].find((p) => !p.inner);
  if (undecrypted) {
    log(`${s}: state:\n${state()}`);
    return { reason: `the kernel did not decrypt its own ESN datagram SPI 0x${undecrypted.spi.toString(16)} low half 0x${undecrypted.udp.readUInt32BE(4).toString(16)}` };
  }
  const seqAb = kernelSeqs(snapA, e.ab.spi, kernelAb.map((p) => p.udp));
  const seqBa = kernelSeqs(snapB, e.ba.spi, inA.map((p) => p.udp));
  for (const r of [seqAb, seqBa]) if (typeof r === 'string') return { reason: `the kernel's sequence numbers: ${r}` };
  const packets: { sa: string; seq: number; what: string; udp: string; inner: string }[] = [];
  kernelAb.forEach((p, k) => packets.push({ sa: 'a-to-b', seq: (seqAb as number[])[k]!, what: describeInner(p.inner!), udp: p.udp.toString('hex'), inner: p.inner!.toString('hex') }));
  inA.forEach((p, k) => packets.push({ sa: 'b-to-a', seq: (seqBa as number[])[k]!, what: describeInner(p.inner!), udp: p.udp.toString('hex'), inner: p.inner!.toString('hex') }));

  // ours: each datagram as sent, decrypted by b to exactly our inner packet, and answered by an echo reply
  const ihl = 20;
  const replies = e.oursInner.map((req) =>
    packets.find((p) => {
      const b = Buffer.from(p.inner, 'hex');
      return p.sa === 'b-to-a' && b[9] === 1 && b[ihl] === 0 && b.subarray(ihl + 4).equals(req.subarray(ihl + 4));
    }),
  );
  const oursB = snapB.at(-1)!.get(e.ours.spi);
  const oursLast = ESN_START_SEQ + ESN_OURS;
  const oursAccepted =
    oursRx.length === ESN_OURS && oursRx.every((p, k) => p.udp.equals(e.oursSealed[k]!) && p.inner?.equals(e.oursInner[k]!) === true) && replies.every((r) => r !== undefined);
  const kernelAcceptedOurs = oursAccepted && oursB !== undefined && full(oursB.seqHi, oursB.seq) === oursLast;
  // our own reading of the kernel's, as a report only
  for (const sa of [e.ab, e.ba]) {
    const inb = new InboundSa({ spi: sa.spi, suite: ESP_SUITES[e.def.name]!, esn: true, encKey: sa.encKey, integKey: sa.integKey, replayWindow: REPLAY_WINDOW, lastSeq: ESN_START_SEQ });
    for (const p of packets.filter((x) => x.sa === sa.direction)) {
      const r = inb.open(Buffer.from(p.udp, 'hex'));
      if (!('packet' in r) || Buffer.from(r.packet).toString('hex') !== p.inner) log(`${s} ${sa.direction}: our InboundSa disagrees on seq 0x${p.seq.toString(16)} "${p.what}": ${'drop' in r ? r.drop : 'different bytes'}`);
    }
  }
  const seqs = (d: string) => packets.filter((p) => p.sa === d).map((p) => `0x${p.seq.toString(16)}`).join(' ');
  log(`${s}: a-to-b ${seqs('a-to-b')}; b-to-a ${seqs('b-to-a')}; kernel accepted ours: ${kernelAcceptedOurs}`);
  if (!kernelAcceptedOurs) log(`${s}: state:\n${state()}`);
  const counters = (snaps: { a: Map<number, EsnCounters>; b: Map<number, EsnCounters> }) =>
    (['a', 'b'] as const).flatMap((ns) =>
      [e.ab, e.ba, e.ours].flatMap((sa) => {
        const c = snaps[ns].get(sa.spi);
        return c ? [{ ns, sa: sa.direction, ...c }] : [];
      }),
    );
  const entry = {
    suite: s,
    xfrmAlgorithm: e.def.algo('<enc>', '<integ>').join(' '),
    startSeq: ESN_START_SEQ,
    sas: [e.ab, e.ba, e.ours].map((sa) => ({
      direction: sa.direction,
      src: sa.src,
      dst: sa.dst,
      spi: `0x${sa.spi.toString(16)}`,
      suite: s,
      encKey: sa.encKey.toString('hex'),
      integKey: sa.integKey.toString('hex'),
    })),
    kernelCounters: { before: counters({ a: snapA[0]!, b: snapB[0]! }), after: counters({ a: snapA.at(-1)!, b: snapB.at(-1)! }) },
    packets,
    ours: {
      sa: 'ours',
      lastSeq: ESN_START_SEQ,
      packets: e.oursSealed.map((d, k) => ({ seq: ESN_START_SEQ + 1 + k, inner: e.oursInner[k]!.toString('hex'), udp: d.toString('hex'), kernelDecrypted: oursRx[k]?.inner?.toString('hex') ?? null })),
    },
    kernelAcceptedOurs,
    kernelRepliesToOurs: replies.map((r) => (r ? { sa: 'b-to-a', seq: r.seq, udp: r.udp, inner: r.inner } : null)),
  };
  return { entry };
}

// ---- main ----

function main(): void {
  const args = process.argv.slice(2);
  const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1]! : DEFAULT_OUT;
  if (process.getuid?.() !== 0) throw new Error('run as root (namespaces, XFRM)');
  for (const t of ['ip', 'tcpdump', 'cc', 'ldd']) if (!which(t)) throw new Error(`${t} not found: apt-get install iproute2 tcpdump gcc libc6-dev`);

  const sas = new Map<string, [SaDef, SaDef]>();
  const ours = new Map<string, Buffer>();
  const inner = oursInner();
  SUITES.forEach((d, i) => {
    const pair = sasOf(i, d.name);
    sas.set(d.name, pair);
    const ab = pair[0];
    const out = new OutboundSa({ spi: ab.spi, suite: ESP_SUITES[d.name]!, encKey: ab.encKey, integKey: ab.integKey, lastSeq: OURS_LAST_SEQ });
    ours.set(d.name, Buffer.from(out.seal(inner)));
  });

  const work = mkdtempSync(join(tmpdir(), 'vpx-xfrm-'));
  try {
    writeFileSync(join(work, 'helper.c'), HELPER_C);
    const helper = join(work, 'xfrm-helper');
    sh('cc', ['-static', '-O2', '-Wall', '-o', helper, join(work, 'helper.c')]);
    const esn = ESN_SUITES.map((base, i) => esnPlanOf(i, base));
    const runSh = script(sas, ours, esn);

    let mode = args.includes('--vm') ? 'vm' : args.includes('--host') ? 'host' : 'auto';
    let hostRefusal: string | null = null;
    if (mode !== 'vm') {
      hostRefusal = probeHostEsp();
      if (hostRefusal === null) mode = 'host';
      else if (mode === 'host') throw new Error(`this kernel refuses an XFRM ESP state: ${hostRefusal}`);
      else {
        log(`this kernel (${sh('uname', ['-r']).stdout.trim()}) refuses an XFRM ESP state ("${hostRefusal}"): using Debian's kernel in a VM`);
        mode = 'vm';
      }
    }
    const { files, kernel } = mode === 'host' ? runOnHost(work, runSh, helper) : runInVm(work, runSh, helper);
    const runLog = files.get('run.log')?.toString('utf8') ?? '';
    process.stderr.write(runLog);
    if (!files.has('done')) throw new Error('the namespace script did not finish (see its log above)');

    const fixture = {
      description:
        "ESP-in-UDP (RFC 3948) tunnel-mode packets made by the Linux kernel's XFRM ESP, each with the inner IPv4 packet that the receiving kernel decrypted it to (captured on the receiver's veth, where the kernel re-injects decapsulated packets). 'ours' is an echo request sealed by our OutboundSa under the a-to-b keys; kernelAcceptedOurs records that the kernel decrypted it to exactly that inner packet and answered it (kernelReplyToOurs). \'esnSuites\': the same with Extended Sequence Numbers (flag esn), the states started at esnReplay so the packets cross 2^32; each packet\'s seq is the 64-bit number the sender\'s kernel state gave it, and \'ours\' there are echo requests our ESN OutboundSa sealed across the wrap for a third state in b. Regenerate with: node --import tsx test/lab/xfrm-esp-vectors.ts",
      generator: 'test/lab/xfrm-esp-vectors.ts',
      kernel,
      hostKernelRefusal: hostRefusal ?? undefined,
      topology: { a: { outer: OUTER_A, inner: INNER_A }, b: { outer: OUTER_B, inner: INNER_B }, encap: 'espinudp 4500 4500' },
      replayWindow: REPLAY_WINDOW,
      suites: [] as unknown[],
      esnReplay: ESN_REPLAY_ARGS.join(' '),
      esnSuites: [] as unknown[],
      skipped: [] as { suite: string; reason: string }[],
    };

    for (const def of SUITES) {
      const s = def.name;
      const [ab, ba] = sas.get(s)!;
      if (!files.has(`${s}.a.pcap`) || !files.has(`${s}.b.pcap`)) {
        const reason = (files.get(`${s}.err`)?.toString('utf8').trim() || 'no capture').split('\n')[0]!;
        log(`${s}: skipped: the kernel refused the state: ${reason}`);
        fixture.skipped.push({ suite: s, reason: `the kernel refused the XFRM state: ${reason}` });
        continue;
      }
      const capA = pcapIpv4(files.get(`${s}.a.pcap`)!);
      const capB = pcapIpv4(files.get(`${s}.b.pcap`)!);
      // a→b datagrams as b received them; b→a as a received them
      const inB = received(capB, OUTER_B, [ab.spi], '10.1.0.', INNER_B).pairs;
      const inA = received(capA, OUTER_A, [ba.spi], '10.2.0.', INNER_A).pairs;
      const kernelAb = inB.filter((p) => p.sport === 4500);
      const oursRx = inB.filter((p) => p.sport === OURS_SPORT);
      const packets: { sa: string; what: string; udp: string; inner: string }[] = [];
      const push = (sa: SaDef, list: Captured['pairs']) => {
        for (const p of list) {
          if (!p.inner) throw new Error(`${s} ${sa.direction}: the kernel did not decrypt an ESP datagram (seq ${p.udp.readUInt32BE(4)})`);
          packets.push({ sa: sa.direction, what: describeInner(p.inner), udp: p.udp.toString('hex'), inner: p.inner.toString('hex') });
        }
      };
      push(ab, kernelAb);
      push(ba, inA);
      const oursSent = ours.get(s)!;
      const accepted = oursRx.length === 1 && oursRx[0]!.udp.equals(oursSent) && oursRx[0]!.inner?.equals(inner) === true;
      const ihl = 20;
      const reply = inA.find(
        (p) => p.inner && p.inner[9] === 1 && p.inner[ihl] === 0 && p.inner.readUInt16BE(ihl + 4) === OURS_ICMP_ID && p.inner.subarray(ihl + 8).equals(OURS_PAYLOAD),
      );
      const kernelAcceptedOurs = accepted && reply !== undefined;
      if (kernelAb.length < PINGS.length + 1) throw new Error(`${s}: only ${kernelAb.length} a-to-b ESP datagrams captured`);
      // our own reading of them, as a report only: the fixture holds what the kernel captured, not what we computed
      for (const sa of [ab, ba]) {
        const inb = new InboundSa({ spi: sa.spi, suite: ESP_SUITES[s]!, encKey: sa.encKey, integKey: sa.integKey, replayWindow: REPLAY_WINDOW });
        for (const p of packets.filter((x) => x.sa === sa.direction)) {
          const r = inb.open(Buffer.from(p.udp, 'hex'));
          if (!('packet' in r) || Buffer.from(r.packet).toString('hex') !== p.inner) log(`${s} ${sa.direction}: our InboundSa disagrees on "${p.what}": ${'drop' in r ? r.drop : 'different bytes'}`);
        }
      }
      log(`${s}: ${kernelAb.length} a-to-b and ${inA.length} b-to-a datagrams, kernel accepted ours: ${kernelAcceptedOurs}`);
      if (!kernelAcceptedOurs) log(`${s}: b state:\n${files.get(`${s}.b.state`)?.toString('utf8') ?? ''}\n${files.get(`${s}.b.xfrmstat`)?.toString('utf8') ?? ''}`);
      fixture.suites.push({
        suite: s,
        xfrmAlgorithm: def.algo('<enc>', '<integ>').join(' '),
        sas: [ab, ba].map((sa) => ({
          direction: sa.direction,
          src: sa.src,
          dst: sa.dst,
          spi: `0x${sa.spi.toString(16)}`,
          suite: s,
          encKey: sa.encKey.toString('hex'),
          integKey: sa.integKey.toString('hex'),
        })),
        packets,
        ours: { sa: 'a-to-b', lastSeq: OURS_LAST_SEQ, inner: inner.toString('hex'), udp: oursSent.toString('hex'), kernelDecrypted: oursRx[0]?.inner?.toString('hex') ?? null },
        kernelAcceptedOurs,
        kernelReplyToOurs: reply ? { sa: 'b-to-a', udp: reply.udp.toString('hex'), inner: reply.inner!.toString('hex') } : null,
      });
    }
    for (const e of esn) {
      const r = esnSuite(e, files);
      if ('reason' in r) {
        log(`${e.name}: skipped: ${r.reason}`);
        fixture.skipped.push({ suite: e.name, reason: r.reason });
      } else fixture.esnSuites.push(r.entry);
    }
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify(fixture, null, 2)}\n`);
    log(`wrote ${relative(process.cwd(), outFile) || outFile}: ${fixture.suites.length} suites, ${fixture.esnSuites.length} ESN suites, ${fixture.skipped.length} skipped`);
  } finally {
    if (!process.env.XFRM_KEEP_WORK) rmSync(work, { recursive: true, force: true });
    else log(`work directory kept: ${work}`);
  }
}

try {
  main();
} catch (e) {
  log(`FAILED: ${(e as Error).message}`);
  process.exitCode = 1;
}
