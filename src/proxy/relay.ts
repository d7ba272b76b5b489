/**
 * Byte relay between a proxy client and its destination, plus the one log line per proxied connection.
 *
 * Piping uses stream.pipe in each direction: backpressure (write() false pauses the source until 'drain'),
 * buffers bounded by the streams' highWaterMark, and no copies (the chunk a socket reads is the chunk written).
 * Half-close: the end of one direction ends the other side's writable (FIN), the opposite direction keeps
 * flowing. An error or an abortive close (destroyed before both directions finished) tears down both sides.
 */
import type { Duplex } from 'node:stream';
import { VpnError } from '../errors.js';
import type { Logger } from '../util/log.js';

export interface RelayResult {
  /** Bytes client to destination. */
  up: number;
  /** Bytes destination to client. */
  down: number;
  durationMs: number;
  /** The first error seen on either side, if any. */
  error?: string;
}

export interface RelayOptions {
  /** Close both sides after this long without data in either direction (0/undefined: never). */
  idleTimeoutMs?: number;
}

/** Relay until both sides are closed; onDone runs exactly once. Returns a function that aborts the relay. */
export function relay(
  client: Duplex,
  upstream: Duplex,
  onDone: (r: RelayResult) => void,
  opts: RelayOptions = {},
): () => void {
  const started = performance.now();
  const res: RelayResult = { up: 0, down: 0, durationMs: 0 };
  let closed = 0;
  let done = false;
  let lastActivity = started;
  let idleTimer: NodeJS.Timeout | undefined;

  const teardown = () => {
    client.destroy();
    upstream.destroy();
  };
  const finish = () => {
    if (done) return;
    done = true;
    if (idleTimer) clearInterval(idleTimer);
    res.durationMs = Math.round(performance.now() - started);
    onDone(res);
  };
  const onError = (err: Error) => {
    if (res.error === undefined) res.error = (err as NodeJS.ErrnoException).code ?? err.message;
    teardown();
  };
  const watchClose = (s: Duplex, other: Duplex) => {
    const onClose = () => {
      // Closed before both of its directions finished cleanly: the other side must go too.
      if (!(s.readableEnded && s.writableFinished)) other.destroy();
      if (++closed === 2) finish();
    };
    if (s.destroyed && s.closed) queueMicrotask(onClose);
    else s.once('close', onClose);
  };

  client.on('data', (chunk: Uint8Array) => {
    res.up += chunk.length;
    lastActivity = performance.now();
  });
  upstream.on('data', (chunk: Uint8Array) => {
    res.down += chunk.length;
    lastActivity = performance.now();
  });
  client.on('error', onError);
  upstream.on('error', onError);
  watchClose(client, upstream);
  watchClose(upstream, client);
  client.pipe(upstream);
  upstream.pipe(client);

  if (opts.idleTimeoutMs && opts.idleTimeoutMs > 0) {
    const idle = opts.idleTimeoutMs;
    idleTimer = setInterval(() => {
      if (performance.now() - lastActivity >= idle) {
        if (res.error === undefined) res.error = 'idle timeout';
        teardown();
      }
    }, Math.max(10, Math.min(idle, 1000)));
    idleTimer.unref?.();
  }
  return teardown;
}

/** A stable short reason for a dial failure: the VpnError code, else the errno code. */
export function errorReason(err: unknown): string {
  if (err instanceof VpnError) return err.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ?? 'INTERNAL';
}

/** Format host:port, bracketing IPv6 literals. */
export function hostPort(host: string | undefined, port: number | undefined): string {
  const h = host ?? '?';
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? '?'}`;
}

export interface ConnectionLogFields {
  proxy: string;
  client: string;
  dest: string;
  route: string;
  up: number;
  down: number;
  durationMs: number;
  error?: string;
  method?: string;
  status?: number;
}

/** The info line every proxied connection gets when it ends. */
export function logConnection(log: Logger, f: ConnectionLogFields): void {
  log.info(`${f.proxy} ${f.client} -> ${f.dest}`, {
    client: f.client,
    dest: f.dest,
    route: f.route,
    method: f.method,
    status: f.status,
    bytes_up: f.up,
    bytes_down: f.down,
    duration_ms: f.durationMs,
    error: f.error,
  });
}
