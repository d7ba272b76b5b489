#!/usr/bin/python3
"""ESP-in-UDP gateway with manual SAs, for the lab: the independent ESP peer of vpnproxy's IPsec client.

Runs inside a lab namespace (test/lab/esp-gateway.ts starts it). It listens on a UDP socket (RFC 3948,
normally :4500), decrypts each ESP datagram with scapy's ESP implementation (SecurityAssociation, Debian
python3-scapy 2.5 + python3-cryptography) and writes the inner IPv4 packet into a TUN device; every packet
the kernel routes into that TUN is encrypted with the outbound SA and sent to the address:port the last valid
ESP datagram came from (NAT-T style; nothing is sent before one arrived).

Tunnel mode, IPv4 only. Non-ESP-marker datagrams (IKE) and 1-byte 0xFF NAT keepalives are logged and
ignored. Anti-replay window (RFC 4303 section 3.4.3) checked before the ICV and updated only after it. The
padding is checked to be 1, 2, 3, ... (scapy drops it unchecked, so the plaintext is looked at again, through
scapy's own cipher objects, for that check alone).

One line per event on stderr, `esp-gw EVENT key=value ...`:
  ready, peer, keepalive, non-esp, malformed, received, decrypted, replayed, bad-icv, bad-spi, bad-padding,
  bad-next-header, dummy, bad-inner, bad-source, sent, no-peer, stats
`received`, `decrypted` and `sent` are left out with --no-data-log (the counters still count them).
SIGUSR1 prints `esp-gw stats {json}`; SIGTERM/SIGINT print it and exit 0.

Usage (all keys hex, with or without 0x; SPIs decimal or 0x-hex; "in" = what this gateway receives):
  esp-gateway.py --listen 10.101.8.2:4500 --tun-name esp0 --tun-addr 10.101.7.1/24 --suite aes128gcm16 \
    --spi-in 0xc1000001 --spi-out 0xc1000002 --enc-key-in HEX --enc-key-out HEX [--integ-key-in HEX ...] \
    [--client-vip 10.101.7.2] [--replay-window 128] [--tun-mtu 1400] [--no-data-log]
"""
import argparse
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation

# strongSwan proposal keyword -> (scapy crypt_algo, AES/ChaCha key bytes, salt bytes, scapy auth_algo, integ key bytes)
# GCM and ChaCha20-Poly1305 key material is key || 4-byte salt (RFC 4106 section 8.1, RFC 7634 section 2).
# All six are scapy 2.5's own algorithms (CHACHA20-POLY1305 included, through cryptography's AEAD API).
SUITES = {
    'aes128gcm16': ('AES-GCM', 16, 4, None, 0),
    'aes256gcm16': ('AES-GCM', 32, 4, None, 0),
    'chacha20poly1305': ('CHACHA20-POLY1305', 32, 4, None, 0),
    'aes128-sha1': ('AES-CBC', 16, 0, 'HMAC-SHA1-96', 20),
    'aes256-sha256': ('AES-CBC', 32, 0, 'SHA2-256-128', 32),
    'aes256-sha512': ('AES-CBC', 32, 0, 'SHA2-512-256', 64),
}

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

COUNTERS = ('received', 'decrypted', 'replayed', 'badIcv', 'badSpi', 'badPadding', 'badNextHeader', 'dummy',
            'badInner', 'badSource', 'malformed', 'keepalives', 'nonEsp', 'sent', 'noPeer', 'tunErrors')


def log(event, **kv):
    parts = ['esp-gw', event] + ['%s=%s' % (k.replace('_', '-'), v) for k, v in kv.items()]
    sys.stderr.write(' '.join(parts) + '\n')
    sys.stderr.flush()


def hexbytes(s, what):
    if s is None or s == '':
        return b''
    s = s[2:] if s.lower().startswith('0x') else s
    try:
        return bytes.fromhex(s)
    except ValueError:
        sys.exit('esp-gateway: %s is not hex' % what)


def spi_of(s):
    v = int(s, 0)
    if not 256 <= v <= 0xFFFFFFFF:
        sys.exit('esp-gateway: SPI %s out of range (256..2^32-1)' % s)
    return v


def hostport(s):
    host, _, port = s.rpartition(':')
    return host, int(port)


class ReplayWindow:
    """RFC 4303 section 3.4.3 sliding window: bit i of `bits` = sequence number top - i was accepted."""

    def __init__(self, size):
        self.size = size
        self.top = 0
        self.bits = 0

    def check(self, seq):
        """'ok', 'zero', 'too-old' or 'duplicate' (nothing is changed)."""
        if seq == 0:
            return 'zero'
        if seq > self.top:
            return 'ok'
        diff = self.top - seq
        if diff >= self.size:
            return 'too-old'
        return 'duplicate' if (self.bits >> diff) & 1 else 'ok'

    def update(self, seq):
        if seq > self.top:
            shift = seq - self.top
            self.bits = 1 if shift >= self.size else ((self.bits << shift) | 1) & ((1 << self.size) - 1)
            self.top = seq
        else:
            self.bits |= 1 << (self.top - seq)


def make_sa(spi, suite, enc_key, integ_key, local, remote, esn=False):
    crypt, klen, slen, auth, ilen = SUITES[suite]
    if len(enc_key) != klen + slen:
        sys.exit('esp-gateway: %s needs a %d-byte enc key (%d key + %d salt), got %d' % (suite, klen + slen, klen, slen, len(enc_key)))
    if len(integ_key) != ilen:
        sys.exit('esp-gateway: %s needs a %d-byte integ key, got %d' % (suite, ilen, len(integ_key)))
    return SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=enc_key,
                               auth_algo=auth, auth_key=integ_key or None,
                               tunnel_header=IP(src=remote, dst=local),
                               nat_t_header=UDP(sport=4500, dport=4500),
                               esn_en=esn, esn=0)


def raw_plaintext(sa, esp):
    """The whole decrypted ESP payload (inner packet, padding, pad length, next header) of a packet whose ICV
    scapy has already verified. Only for the padding check: scapy's decrypt drops the padding bytes."""
    algo = sa.crypt_algo
    icv = sa.crypt_icv_size or algo.icv_size or sa.auth_algo.icv_size
    data = bytes(esp.data)
    iv, body, tag = data[:algo.iv_size], data[algo.iv_size:len(data) - icv], data[len(data) - icv:]
    if algo.ciphers_aead_api:
        # AAD: SPI || seq, or with ESN SPI || seq-high || seq-low (RFC 4106 §5); the high half stays 0 here
        aad = struct.pack('!LLL', esp.spi, sa.esn, esp.seq) if sa.esn_en else struct.pack('!LL', esp.spi, esp.seq)
        return algo.cipher(sa.crypt_key).decrypt(sa.crypt_salt + iv, body + tag, aad)
    d = algo.new_cipher(sa.crypt_key, iv).decryptor()
    return d.update(body) + d.finalize()


def open_tun(name, addr, mtu):
    fd = os.open('/dev/net/tun', os.O_RDWR)
    ifr = struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    subprocess.run(['ip', 'addr', 'add', addr, 'dev', name], check=True)
    subprocess.run(['ip', 'link', 'set', name, 'mtu', str(mtu), 'up'], check=True)
    os.set_blocking(fd, False)
    return fd


def main():
    ap = argparse.ArgumentParser(description='ESP-in-UDP gateway (scapy) for the vpnproxy lab')
    ap.add_argument('--listen', required=True, help='HOST:PORT of the UDP socket (normally :4500)')
    ap.add_argument('--tun-name', required=True)
    ap.add_argument('--tun-addr', required=True, help='address/prefix of the TUN device, e.g. 10.101.7.1/24')
    ap.add_argument('--tun-mtu', type=int, default=1400)
    ap.add_argument('--suite', required=True, choices=sorted(SUITES))
    ap.add_argument('--spi-in', required=True, help='SPI of what we receive')
    ap.add_argument('--spi-out', required=True, help='SPI of what we send')
    ap.add_argument('--enc-key-in', required=True)
    ap.add_argument('--enc-key-out', required=True)
    ap.add_argument('--integ-key-in', default='')
    ap.add_argument('--integ-key-out', default='')
    ap.add_argument('--client-vip', help="the client's inner address: other inner sources are dropped")
    ap.add_argument('--replay-window', type=int, default=128)
    ap.add_argument('--esn', action='store_true', help='extended sequence numbers (high half 0: checks the ESN ICV/AAD layout)')
    ap.add_argument('--no-data-log', action='store_true', help='no received/decrypted/sent lines')
    a = ap.parse_args()

    host, port = hostport(a.listen)
    spi_in, spi_out = spi_of(a.spi_in), spi_of(a.spi_out)
    sa_in = make_sa(spi_in, a.suite, hexbytes(a.enc_key_in, '--enc-key-in'), hexbytes(a.integ_key_in, '--integ-key-in'), host, '0.0.0.0', a.esn)
    sa_out = make_sa(spi_out, a.suite, hexbytes(a.enc_key_out, '--enc-key-out'), hexbytes(a.integ_key_out, '--integ-key-out'), '0.0.0.0', host, a.esn)
    window = ReplayWindow(a.replay_window)
    data_log = not a.no_data_log
    counters = dict.fromkeys(COUNTERS, 0)
    state = {'peer': None}

    def stats(*_):
        log('stats', json=json.dumps(counters, separators=(',', ':')))

    def stop(*_):
        stats()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, stats)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    tun = open_tun(a.tun_name, a.tun_addr, a.tun_mtu)

    def on_udp():
        try:
            data, src = sock.recvfrom(65535)
        except BlockingIOError:
            return
        frm = '%s:%d' % src
        if data == b'\xff':
            counters['keepalives'] += 1
            log('keepalive', frm=frm)
            return
        if len(data) >= 4 and data[:4] == b'\0\0\0\0':
            counters['nonEsp'] += 1
            log('non-esp', frm=frm, len=len(data))
            return
        if len(data) < 8:
            counters['malformed'] += 1
            log('malformed', frm=frm, len=len(data))
            return
        spi, seq = struct.unpack('!LL', data[:8])
        counters['received'] += 1
        if data_log:
            log('received', frm=frm, spi='0x%08x' % spi, seq=seq, len=len(data))
        if spi != spi_in:
            counters['badSpi'] += 1
            log('bad-spi', frm=frm, spi='0x%08x' % spi, seq=seq)
            return
        why = window.check(seq)
        if why != 'ok':
            counters['replayed'] += 1
            log('replayed', frm=frm, spi='0x%08x' % spi, seq=seq, why=why)
            return
        esp = ESP(data)
        outer = IP(src=src[0], dst=host, proto=50) / esp
        try:
            sa_in.decrypt(outer)
            plain = raw_plaintext(sa_in, esp)
        except IPSecIntegrityError:
            counters['badIcv'] += 1
            log('bad-icv', frm=frm, spi='0x%08x' % spi, seq=seq)
            return
        except Exception as e:  # too short, not a whole number of blocks, ...
            counters['malformed'] += 1
            log('malformed', frm=frm, spi='0x%08x' % spi, seq=seq, why=type(e).__name__)
            return
        window.update(seq)
        # NAT-T: replies go where the last authenticated packet came from.
        if state['peer'] != src:
            state['peer'] = src
            sa_out.tunnel_header.dst = src[0]
            sa_out.nat_t_header.dport = src[1]
            log('peer', addr=frm)
        padlen, nh = plain[-2], plain[-1]
        if padlen + 2 > len(plain) or plain[len(plain) - 2 - padlen:len(plain) - 2] != bytes(range(1, padlen + 1)):
            counters['badPadding'] += 1
            log('bad-padding', frm=frm, spi='0x%08x' % spi, seq=seq, padlen=padlen)
            return
        if nh == 59:
            counters['dummy'] += 1
            log('dummy', frm=frm, spi='0x%08x' % spi, seq=seq)
            return
        if nh != 4:
            counters['badNextHeader'] += 1
            log('bad-next-header', frm=frm, spi='0x%08x' % spi, seq=seq, nh=nh)
            return
        inner = plain[:len(plain) - 2 - padlen]
        total = struct.unpack('!H', inner[2:4])[0] if len(inner) >= 20 else 0
        if len(inner) < 20 or inner[0] >> 4 != 4 or total < 20 or total > len(inner):
            counters['badInner'] += 1
            log('bad-inner', frm=frm, spi='0x%08x' % spi, seq=seq, len=len(inner))
            return
        inner = inner[:total]  # TFC padding
        isrc, idst = socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20])
        if a.client_vip and isrc != a.client_vip:
            counters['badSource'] += 1
            log('bad-source', frm=frm, spi='0x%08x' % spi, seq=seq, src=isrc)
            return
        counters['decrypted'] += 1
        if data_log:
            log('decrypted', spi='0x%08x' % spi, seq=seq, src=isrc, dst=idst, proto=inner[9], len=total)
        try:
            os.write(tun, inner)
        except OSError as e:
            counters['tunErrors'] += 1
            log('tun-error', why=e.strerror)

    def on_tun():
        try:
            pkt = os.read(tun, 65535)
        except BlockingIOError:
            return
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return  # IPv6 and the like: not carried
        isrc, idst = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
        peer = state['peer']
        if peer is None:
            counters['noPeer'] += 1
            log('no-peer', src=isrc, dst=idst, proto=pkt[9], len=len(pkt))
            return
        seq = sa_out.seq_num
        enc = sa_out.encrypt(IP(pkt))
        out = bytes(enc[ESP])
        try:
            sock.sendto(out, peer)
        except OSError as e:
            log('send-error', to='%s:%d' % peer, why=e.strerror)
            return
        counters['sent'] += 1
        if data_log:
            log('sent', to='%s:%d' % peer, spi='0x%08x' % spi_out, seq=seq, src=isrc, dst=idst, proto=pkt[9], len=len(out))

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, on_udp)
    sel.register(tun, selectors.EVENT_READ, on_tun)
    log('ready', listen='%s:%d' % (host, port), tun=a.tun_name, suite=a.suite, spi_in='0x%08x' % spi_in, spi_out='0x%08x' % spi_out)
    print('ready', flush=True)
    while True:
        for key, _ in sel.select():
            key.data()


if __name__ == '__main__':
    main()
