import type { VpnTunnel } from '../tunnel.js';
import type { VpnCommand } from './args.js';

/** `--ping ADDR`: echo requests through the tunnel with ping(8)'s output; returns the exit code. */
export async function pingLoop(tunnel: VpnTunnel, cmd: VpnCommand, signal: AbortSignal): Promise<number> {
  const target = cmd.ping!;
  const out = process.stdout;
  out.write(`PING ${target} 56(${target.includes(':') ? 104 : 84}) bytes of data.\n`);
  const rtts: number[] = [];
  let sent = 0;
  const started = performance.now();
  for (let seq = 1; seq <= cmd.count && !signal.aborted; seq++) {
    const t0 = performance.now();
    sent++;
    const reply = await tunnel.stack.ping(target, { seq, timeoutMs: Math.max(2000, cmd.intervalMs) });
    if (reply) {
      rtts.push(reply.rttMs);
      out.write(`${reply.bytes} bytes from ${reply.from}: icmp_seq=${reply.seq} ttl=${reply.ttl} time=${reply.rttMs.toFixed(2)} ms\n`);
    }
    const wait = cmd.intervalMs - (performance.now() - t0);
    if (seq < cmd.count && wait > 0 && !signal.aborted) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
  }
  const received = rtts.length;
  const loss = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 100);
  out.write(`\n--- ${target} ping statistics ---\n`);
  out.write(`${sent} packets transmitted, ${received} received, ${loss}% packet loss, time ${Math.round(performance.now() - started)}ms\n`);
  if (received > 0) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / received;
    const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / received);
    out.write(`rtt min/avg/max/mdev = ${min.toFixed(3)}/${avg.toFixed(3)}/${max.toFixed(3)}/${mdev.toFixed(3)} ms\n`);
  }
  return received > 0 ? 0 : 1;
}
