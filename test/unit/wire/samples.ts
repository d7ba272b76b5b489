import { buildIcmp } from '../../../src/wire/icmp.js';
import { buildIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { buildTcp, TcpFlag } from '../../../src/wire/tcp.js';
import { buildUdp } from '../../../src/wire/udp.js';

/** A few well-formed packets: ICMP echo request/reply, a TCP SYN with options, a UDP datagram. */
const A = parseIpv4Address('10.8.0.2');
const B = parseIpv4Address('10.8.0.1');
const C = parseIpv4Address('1.2.3.4');

export function samplePackets(): Record<string, Uint8Array> {
  return {
    echoRequest: buildIpv4({ src: A, dst: B, protocol: 1, id: 1 }, buildIcmp({ kind: 'echo-request', id: 1, seq: 3, payload: new Uint8Array(56) })),
    echoReply: buildIpv4({ src: B, dst: A, protocol: 1, id: 2 }, buildIcmp({ kind: 'echo-reply', id: 1, seq: 3, payload: new Uint8Array(56) })),
    syn: buildIpv4(
      { src: A, dst: C, protocol: 6, dontFragment: true },
      buildTcp(
        { srcPort: 40000, dstPort: 80, seq: 1000, flags: TcpFlag.SYN, window: 64240, options: { mss: 1360, sackPermitted: true, timestamp: { value: 1, echo: 0 }, windowScale: 7 } },
        { src: A, dst: C },
      ),
    ),
    udp: buildIpv4({ src: A, dst: B, protocol: 17 }, buildUdp({ srcPort: 5353, dstPort: 53, payload: new Uint8Array(33) }, { src: A, dst: B })),
  };
}

