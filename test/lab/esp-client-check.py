#!/usr/bin/python3
"""A scapy ESP-in-UDP client, used only to test the lab's ESP gateway (esp-gateway.py) and tshark-esp.ts.

Runs in the root namespace with Debian's /usr/bin/python3. Sends ESP-encapsulated ICMP echo requests from the
client VIP to --target and checks the decrypted replies; optionally replays a datagram already sent, sends one
with a flipped ciphertext byte and one with a wrong SPI (none of which may be answered), and fetches an HTTP
body over a minimal TCP exchange inside the tunnel. Prints one JSON object on stdout; exits 1 if a check
failed.

  esp-client-check.py --gateway 10.101.8.2:4500 --suite aes128gcm16 --spi-out 0x.. --spi-in 0x.. \
    --enc-key-out HEX --enc-key-in HEX [--integ-key-out HEX --integ-key-in HEX] --vip 10.101.7.2 \
    --target 10.101.5.2 [--pings 3] [--replay] [--tamper] [--wrong-spi] [--keepalive] [--http-get /bytes/20000]
"""
import argparse
import hashlib
import json
import os
import random
import socket
import struct
import sys
import time

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation

SUITES = {
    'aes128gcm16': ('AES-GCM', None),
    'aes256gcm16': ('AES-GCM', None),
    'chacha20poly1305': ('CHACHA20-POLY1305', None),
    'aes128-sha1': ('AES-CBC', 'HMAC-SHA1-96'),
    'aes256-sha256': ('AES-CBC', 'SHA2-256-128'),
    'aes256-sha512': ('AES-CBC', 'SHA2-512-256'),
}


def hexbytes(s):
    s = s or ''
    return bytes.fromhex(s[2:] if s.lower().startswith('0x') else s)


class Client:
    def __init__(self, a):
        host, _, port = a.gateway.rpartition(':')
        self.gw = (host, int(port))
        crypt, auth = SUITES[a.suite]
        self.sa_out = SecurityAssociation(ESP, spi=int(a.spi_out, 0), crypt_algo=crypt, crypt_key=hexbytes(a.enc_key_out),
                                          auth_algo=auth, auth_key=hexbytes(a.integ_key_out) or None,
                                          tunnel_header=IP(src='0.0.0.0', dst=host))
        self.sa_in = SecurityAssociation(ESP, spi=int(a.spi_in, 0), crypt_algo=crypt, crypt_key=hexbytes(a.enc_key_in),
                                         auth_algo=auth, auth_key=hexbytes(a.integ_key_in) or None,
                                         tunnel_header=IP(src=host, dst='0.0.0.0'))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((a.bind, 0))
        self.vip = a.vip
        self.seen = set()
        self.stats = {'sent': 0, 'received': 0, 'decrypted': 0, 'badIcv': 0, 'badSpi': 0, 'replayed': 0, 'other': 0}

    def send(self, inner, mutate=None):
        """Encrypts an inner packet and sends it; returns the datagram (after `mutate`)."""
        esp = bytes(self.sa_out.encrypt(inner)[ESP])
        if mutate:
            esp = mutate(esp)
        self.sock.sendto(esp, self.gw)
        self.stats['sent'] += 1
        return esp

    def send_raw(self, datagram):
        self.sock.sendto(datagram, self.gw)
        self.stats['sent'] += 1

    def recv(self, deadline):
        """The next decrypted inner packet (scapy IP) before `deadline`, or None."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            self.stats['received'] += 1
            if len(data) < 8 or data[:4] == b'\0\0\0\0':
                self.stats['other'] += 1
                continue
            spi, seq = struct.unpack('!LL', data[:8])
            if spi != self.sa_in.spi:
                self.stats['badSpi'] += 1
                continue
            if seq in self.seen:
                self.stats['replayed'] += 1
                continue
            try:
                inner = self.sa_in.decrypt(IP(src=self.gw[0], dst='0.0.0.0', proto=50) / ESP(data))
            except IPSecIntegrityError:
                self.stats['badIcv'] += 1
                continue
            self.seen.add(seq)
            self.stats['decrypted'] += 1
            return IP(bytes(inner))


def ping(c, target, ident, seq, size, timeout):
    payload = os.urandom(size)
    req = IP(src=c.vip, dst=target, id=random.randint(1, 65535)) / ICMP(type=8, id=ident, seq=seq) / payload
    datagram = c.send(req)
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        p = c.recv(deadline)
        if p is None:
            return None, datagram
        if (p.haslayer(ICMP) and p[ICMP].type == 0 and p[ICMP].id == ident and p[ICMP].seq == seq
                and p.src == target and p.dst == c.vip and bytes(p[ICMP].payload) == payload):
            return round((time.monotonic() - t0) * 1000, 2), datagram


def quiet(c, wait):
    """Packets that arrive within `wait` seconds (there should be none)."""
    n = 0
    deadline = time.monotonic() + wait
    while c.recv(deadline) is not None:
        n += 1
    return n


def http_get(c, target, path, timeout):
    """GET `path` over a hand-made TCP connection inside the tunnel; returns (status line, headers, body)."""
    sport = random.randint(20000, 60000)
    isn = random.randint(0, 2**32 - 1)
    deadline = time.monotonic() + timeout
    base = IP(src=c.vip, dst=target)
    c.send(base / TCP(sport=sport, dport=80, flags='S', seq=isn, window=65535, options=[('MSS', 1300)]))

    def segment():
        while True:
            p = c.recv(deadline)
            if p is None:
                raise TimeoutError('HTTP over ESP: timed out')
            if p.haslayer(TCP) and p[TCP].sport == 80 and p[TCP].dport == sport:
                return p[TCP]

    t = segment()
    if t.flags & 0x12 != 0x12:
        raise RuntimeError('HTTP over ESP: expected SYN-ACK, got flags %s' % t.flags)
    rcv = (t.seq + 1) % 2**32
    snd = (isn + 1) % 2**32
    req = ('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (path, target)).encode()
    c.send(base / TCP(sport=sport, dport=80, flags='PA', seq=snd, ack=rcv, window=65535) / req)
    snd = (snd + len(req)) % 2**32
    data = bytearray()
    while True:
        t = segment()
        payload = bytes(t.payload)
        if t.haslayer('Padding'):
            payload = payload[:len(payload) - len(bytes(t['Padding']))]
        if t.flags & 0x04:
            raise RuntimeError('HTTP over ESP: connection reset')
        fin = False
        if t.seq == rcv:
            data += payload
            rcv = (rcv + len(payload)) % 2**32
            if t.flags & 0x01:
                rcv = (rcv + 1) % 2**32
                fin = True
        c.send(base / TCP(sport=sport, dport=80, flags='FA' if fin else 'A', seq=snd, ack=rcv, window=65535))
        if fin:
            break
    head, _, body = bytes(data).partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(':') for l in lines[1:])}
    return lines[0], headers, body


def main():
    ap = argparse.ArgumentParser(description='scapy ESP-in-UDP client that checks the lab ESP gateway')
    ap.add_argument('--gateway', required=True)
    ap.add_argument('--bind', default='0.0.0.0')
    ap.add_argument('--suite', required=True, choices=sorted(SUITES))
    ap.add_argument('--spi-out', required=True)
    ap.add_argument('--spi-in', required=True)
    ap.add_argument('--enc-key-out', required=True)
    ap.add_argument('--enc-key-in', required=True)
    ap.add_argument('--integ-key-out', default='')
    ap.add_argument('--integ-key-in', default='')
    ap.add_argument('--vip', required=True)
    ap.add_argument('--target', required=True)
    ap.add_argument('--pings', type=int, default=3)
    ap.add_argument('--size', type=int, default=56)
    ap.add_argument('--timeout', type=float, default=3.0)
    ap.add_argument('--quiet-wait', type=float, default=0.5, help='how long to wait for (absent) answers to bad packets')
    ap.add_argument('--replay', action='store_true', help='resend the first echo request datagram as it was')
    ap.add_argument('--tamper', action='store_true', help='send an echo request with one ciphertext byte flipped')
    ap.add_argument('--wrong-spi', action='store_true', help='send an echo request under another SPI')
    ap.add_argument('--keepalive', action='store_true', help='send a NAT keepalive (0xFF)')
    ap.add_argument('--http-get', help='fetch this path from --target:80 over TCP inside the tunnel')
    a = ap.parse_args()

    c = Client(a)
    out = {'suite': a.suite, 'local': '%s:%d' % c.sock.getsockname()}
    ok = True
    ident = random.randint(1, 65535)
    rtts, first = [], None
    for i in range(1, a.pings + 1):
        rtt, dg = ping(c, a.target, ident, i, a.size, a.timeout)
        first = first or dg
        rtts.append(rtt)
    out['rtts'] = rtts
    out['firstDatagram'] = first.hex() if first else None  # for a known-answer check by another implementation
    out['replies'] = sum(r is not None for r in rtts)
    ok = ok and out['replies'] == a.pings
    if a.keepalive:
        c.send_raw(b'\xff')
    bad = {}
    if a.replay and first:
        c.send_raw(first)
        bad['replay'] = quiet(c, a.quiet_wait)
    if a.tamper:
        def flip(esp):
            b = bytearray(esp)
            b[len(b) // 2] ^= 0x01
            return bytes(b)
        c.send(IP(src=c.vip, dst=a.target) / ICMP(type=8, id=ident, seq=1000) / b'tampered', mutate=flip)
        bad['tamper'] = quiet(c, a.quiet_wait)
    if a.wrong_spi:
        def respi(esp):
            return struct.pack('!L', (struct.unpack('!L', esp[:4])[0] + 1) & 0xFFFFFFFF or 1) + esp[4:]
        c.send(IP(src=c.vip, dst=a.target) / ICMP(type=8, id=ident, seq=1001) / b'wrong spi', mutate=respi)
        bad['wrongSpi'] = quiet(c, a.quiet_wait)
    out['answeredBad'] = bad
    ok = ok and not any(bad.values())
    if a.http_get:
        try:
            status, headers, body = http_get(c, a.target, a.http_get, max(a.timeout, 10))
            out['http'] = {'status': status, 'length': len(body), 'sha256': hashlib.sha256(body).hexdigest(),
                           'xSha256': headers.get('x-sha256'), 'contentLength': headers.get('content-length')}
            ok = ok and status.split(' ')[1:2] == ['200']
        except Exception as e:
            out['http'] = {'error': str(e)}
            ok = False
    out['stats'] = c.stats
    out['ok'] = ok
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
