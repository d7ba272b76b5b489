/**
 * Pieces shared by the UDP and TCP transports: the error type with a `fatal` flag, the mapping from
 * socket errno codes to our stable error codes, and a minimal listener registry (unlike EventEmitter,
 * an 'error' without listeners is dropped instead of thrown, so a stray ICMP error never crashes).
 */
import { VpnError, type ErrorCode } from '../errors.js';
import type { TransportEvents } from './types.js';
import { hostPort } from '../util/host-port.js';

/** A transport error. `fatal` false means the transport stays open (e.g. ICMP port unreachable on UDP). */
export class TransportError extends VpnError {
  readonly fatal: boolean;
  /** The system error code behind it (ECONNREFUSED, ...), if any. */
  readonly errno: string | undefined;
  constructor(code: ErrorCode, message: string, opts: { fatal: boolean; errno?: string | undefined; cause?: unknown }) {
    super(code, message, { cause: opts.cause });
    this.name = 'TransportError';
    this.fatal = opts.fatal;
    this.errno = opts.errno;
  }
}

export interface ErrorContext {
  proto: 'udp' | 'tcp';
  host: string;
  port: number;
  /** connect: while connecting; io: on an established transport. */
  phase: 'connect' | 'io';
  fatal: boolean;
}

/** Map a Node socket/DNS error to a TransportError with a code users can act on. */
export function mapSocketError(err: unknown, ctx: ErrorContext): TransportError {
  const errno = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
  const where = `${hostPort(ctx.host, ctx.port)} (${ctx.proto.toUpperCase()})`;
  const detail = err instanceof Error ? err.message : String(err);
  const mk = (code: ErrorCode, msg: string) => new TransportError(code, msg, { fatal: ctx.fatal, errno, cause: err });
  switch (errno) {
    case 'ECONNREFUSED':
      return mk(
        'CONN_REFUSED',
        ctx.proto === 'udp'
          ? `${where} answered with ICMP port unreachable: is the server running and is the port/protocol right?`
          : `connection refused by ${where}: is the server running and is the port/protocol right?`,
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return mk('HOST_UNREACHABLE', `${where} is unreachable (${errno}): check the address and your network`);
    case 'ETIMEDOUT':
      return ctx.phase === 'connect'
        ? mk('CONNECT_TIMEOUT', `connecting to ${where} timed out (${errno}): server down or blocked by a firewall?`)
        : mk('TRANSPORT_ERROR', `connection to ${where} timed out (${errno})`);
    case 'ENOTFOUND':
      return mk('DNS_NXDOMAIN', `cannot resolve ${ctx.host}: no such host (check the remote in the profile)`);
    case 'EAI_AGAIN':
      return mk('TRANSPORT_ERROR', `cannot resolve ${ctx.host}: DNS temporarily unavailable (${errno})`);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return mk('TRANSPORT_CLOSED', `${where} closed the connection (${errno})`);
    default:
      return mk('TRANSPORT_ERROR', `transport to ${where} failed: ${detail}`);
  }
}

type Listeners = { [E in keyof TransportEvents]: Array<TransportEvents[E]> };

/** on/off/emit for the three transport events; listeners run synchronously in registration order. */
export class TransportEmitter {
  private readonly listeners: Listeners = { packet: [], error: [], close: [] };

  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    (this.listeners[event] as Array<TransportEvents[E]>).push(listener);
    return this;
  }

  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    const arr = this.listeners[event] as Array<TransportEvents[E]>;
    const i = arr.indexOf(listener);
    if (i >= 0) arr.splice(i, 1);
    return this;
  }

  protected emitPacket(p: Buffer): void {
    const arr = this.listeners.packet;
    if (arr.length === 1) arr[0]!(p);
    else for (const l of arr.slice()) l(p);
  }

  protected emitError(e: Error): void {
    for (const l of this.listeners.error.slice()) l(e);
  }

  protected emitClose(): void {
    for (const l of this.listeners.close.slice()) l();
  }
}
