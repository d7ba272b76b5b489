/**
 * Happy Eyeballs (RFC 8305, simplified) for dialing a name: A and AAAA are asked at once; the preferred family's
 * first address is tried as soon as it is known, the other family's first address once the preferred one has
 * failed (resolution or connect) or `delayMs` (250 ms, the Connection Attempt Delay; it also bounds how long an
 * IPv4 attempt waits for the AAAA answer when the preference depends on it) has passed. The first connection
 * wins; every other attempt is aborted through its signal, and a connection that still completes is closed.
 * When both fail, one VpnError names both failures.
 *
 * Sans-I/O apart from the callbacks: resolution and connects are handed in, time is the injected Clock.
 * One address per family (no per-address stagger inside a family).
 */
import { VpnError, type ErrorCode } from '../errors.js';
import type { Clock } from '../util/clock.js';

export interface HappyEyeballsOptions<T> {
  clock: Clock;
  /** Name being dialed (for the error message). */
  name: string;
  resolve4(): Promise<string[]>;
  resolve6(): Promise<string[]>;
  /**
   * IPv6 first? A boolean decides at once; a function decides when the AAAA answer arrives (IPv4 waits for
   * it at most delayMs), given the IPv6 addresses.
   */
  prefer6: boolean | ((addrs6: string[]) => boolean);
  /** Connect to one address; must reject (soon) once `signal` aborts. */
  connect(address: string, signal: AbortSignal): Promise<T>;
  /** Close a connection that completed after another had won. */
  discard(conn: T): void;
  /** Default 250 ms. */
  delayMs?: number;
  signal?: AbortSignal;
}

export interface HappyEyeballsResult<T> {
  conn: T;
  address: string;
  family: 4 | 6;
}

type Fam = 4 | 6;

interface FamilyState {
  addrs?: string[];
  /** Why this family produced no connection (resolution or connect failure). */
  error?: unknown;
  started: boolean;
  abort: AbortController;
}

export function happyEyeballs<T>(o: HappyEyeballsOptions<T>): Promise<HappyEyeballsResult<T>> {
  const delayMs = o.delayMs ?? 250;
  const fam: Record<Fam, FamilyState> = {
    4: { started: false, abort: new AbortController() },
    6: { started: false, abort: new AbortController() },
  };
  let primary: Fam | undefined = typeof o.prefer6 === 'boolean' ? (o.prefer6 ? 6 : 4) : undefined;
  let delayOver = false;
  let settled = false;
  return new Promise((resolve, reject) => {
    const timer = o.clock.setTimer(() => {
      delayOver = true;
      step();
    }, delayMs);
    const onAbort = () => finish(new VpnError('TRANSPORT_CLOSED', 'aborted'));
    o.signal?.addEventListener('abort', onAbort, { once: true });

    function finish(err: unknown, win?: HappyEyeballsResult<T>): void {
      if (settled) return;
      settled = true;
      o.clock.clearTimer(timer);
      o.signal?.removeEventListener('abort', onAbort);
      for (const f of [4, 6] as const) if (f !== win?.family) fam[f].abort.abort();
      if (win) resolve(win);
      else reject(err);
    }

    const failed = (f: Fam) => fam[f].error !== undefined;
    const other = (f: Fam): Fam => (f === 4 ? 6 : 4);

    function mayStart(f: Fam): boolean {
      const s = fam[f];
      if (s.started || failed(f) || !s.addrs) return false;
      if (primary === undefined) return delayOver; // preference still waits on the AAAA answer
      if (f === primary) return true;
      return delayOver || failed(primary);
    }

    function step(): void {
      if (settled) return;
      for (const f of [6, 4] as const) if (mayStart(f)) start(f);
      if (failed(4) && failed(6)) finish(combined());
    }

    function start(f: Fam): void {
      const s = fam[f];
      s.started = true;
      const address = s.addrs![0]!;
      o.connect(address, s.abort.signal).then(
        (conn) => {
          if (settled) o.discard(conn);
          else finish(undefined, { conn, address, family: f });
        },
        (e: unknown) => {
          s.error = e ?? new Error('failed');
          step();
        },
      );
    }

    function resolved(f: Fam, p: Promise<string[]>): void {
      p.then(
        (addrs) => {
          if (addrs.length === 0) fam[f].error = new VpnError('DNS_NODATA', `${o.name} has no IPv${f} address`);
          else fam[f].addrs = addrs;
          if (f === 6 && primary === undefined) primary = addrs.length && (o.prefer6 as (a: string[]) => boolean)(addrs) ? 6 : 4;
          step();
        },
        (e: unknown) => {
          fam[f].error = e ?? new Error('failed');
          if (f === 6 && primary === undefined) primary = 4;
          step();
        },
      );
    }

    function combined(): VpnError {
      const first: Fam = primary ?? 4;
      const e1 = fam[first].error;
      const e2 = fam[other(first)].error;
      const msg = (f: Fam, e: unknown) => {
        const a = fam[f].addrs?.[0];
        return `IPv${f}${a && fam[f].started ? ` ${f === 6 ? `[${a}]` : a}` : ''}: ${e instanceof Error ? e.message : String(e)}`;
      };
      // The code of the more telling failure: a family without addresses says less than a refused connect.
      const code = (e: unknown): ErrorCode | undefined => (e instanceof VpnError ? e.code : undefined);
      const c1 = code(e1);
      const c2 = code(e2);
      const pick = c1 && c1 !== 'DNS_NODATA' ? c1 : (c2 ?? c1 ?? 'TRANSPORT_ERROR');
      return new VpnError(pick, `cannot reach ${o.name}: ${msg(first, e1)}; ${msg(other(first), e2)}`);
    }

    resolved(6, o.resolve6());
    resolved(4, o.resolve4());
  });
}
