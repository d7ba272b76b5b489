/**
 * HTTP/1.1 by hand over one of our TcpSockets, streaming (bodies are hashed as they arrive, never buffered
 * whole), for the stack interop tests: what a client would do over a kernel socket.
 */
import { createHash } from 'node:crypto';
import { detChunks, startLab, type Lab } from '../lab/index.js';
import { OpenVpnBackend } from '../../src/openvpn/backend.js';
import { loadProfile } from '../../src/openvpn/profile.js';
import type { OpenVpnProfile } from '../../src/openvpn/profile-types.js';
import type { TcpSocket } from '../../src/stack/tcp/socket.js';
import { createTransport } from '../../src/transport/index.js';
import { VpnTunnel, type TunnelOptions } from '../../src/tunnel.js';

export interface HashedResponse {
  status: number;
  headers: Map<string, string>;
  /** Body bytes received (after the header block). */
  bytes: number;
  sha256: string;
  /** ms from request to the first body byte, and to the end. */
  firstByteMs: number;
  totalMs: number;
  /** ms after the request at which each data event carrying body bytes arrived. */
  arrivals: number[];
  /** The error that ended the socket, if any (the body counts what came before it). */
  error?: Error & { code?: string };
}

/** Sends `GET path` (Connection: close) on `s` and hashes the body until the peer closes (or resets). */
export function getHashed(s: TcpSocket, host: string, path: string): Promise<HashedResponse> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let head: Buffer | undefined = Buffer.alloc(0);
    let status = 0;
    const headers = new Map<string, string>();
    let bytes = 0;
    let firstByteMs = -1;
    const arrivals: number[] = [];
    let settled = false;
    const body = (b: Buffer) => {
      if (b.length === 0) return;
      if (firstByteMs < 0) firstByteMs = Date.now() - t0;
      arrivals.push(Date.now() - t0);
      bytes += b.length;
      hash.update(b);
    };
    const done = (error?: Error) => {
      if (settled) return;
      settled = true;
      resolve({ status, headers, bytes, sha256: hash.digest('hex'), firstByteMs, totalMs: Date.now() - t0, arrivals, error });
    };
    s.on('data', (d: Buffer) => {
      if (head === undefined) return body(d);
      head = Buffer.concat([head, d]);
      const i = head.indexOf('\r\n\r\n');
      if (i < 0) return;
      const lines = head.subarray(0, i).toString('latin1').split('\r\n');
      status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        if (c > 0) headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
      }
      const rest = head.subarray(i + 4);
      head = undefined;
      body(rest);
    });
    s.on('end', () => done());
    s.on('error', (e: Error) => done(e));
    s.on('close', () => done());
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

/** POSTs `n` bytes of detBytes(n, seed) to /upload, written with backpressure; returns the server's JSON. */
export async function uploadHashed(s: TcpSocket, host: string, n: number, seed?: string): Promise<{ bytes: number; sha256: string; ms: number }> {
  const t0 = Date.now();
  const answer = new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  });
  s.write(`POST /upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);
  for (const c of detChunks(n, seed, 256 * 1024)) {
    if (!s.write(c)) await new Promise<void>((r) => s.once('drain', r));
  }
  const text = await answer;
  const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { bytes: number; sha256: string };
  return { ...json, ms: Date.now() - t0 };
}

/** MB/s (10^6 bytes per second) of n bytes in ms. */
export function mbps(n: number, ms: number): string {
  return (n / 1e6 / (ms / 1000)).toFixed(1);
}

/** A VpnTunnel over the OpenVPN backend for `profile`. */
export function openVpnTunnel(profile: OpenVpnProfile, opts: Omit<TunnelOptions, 'backend'> = {}): VpnTunnel {
  return new VpnTunnel({ ...opts, backend: new OpenVpnBackend({ profile, createTransport }) });
}

/**
 * A lab with one UDP OpenVPN server and our VpnTunnel up through it, the fixture of the stack interop suites.
 * If the tunnel does not come up, what was started is stopped before the error propagates.
 */
export async function startLabTunnel(): Promise<{ lab: Lab; tunnel: VpnTunnel }> {
  const lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
  let tunnel: VpnTunnel | undefined;
  try {
    const { profile } = await loadProfile(await lab.clientProfile());
    tunnel = openVpnTunnel(profile);
    await tunnel.start();
    return { lab, tunnel };
  } catch (e) {
    await tunnel?.close();
    await lab.stop();
    throw e;
  }
}

/** Closes what startLabTunnel started (either may be missing when it failed). */
export async function stopLabTunnel(lab: Lab | undefined, tunnel: VpnTunnel | undefined): Promise<void> {
  await tunnel?.close();
  await lab?.stop();
}
