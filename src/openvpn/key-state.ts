import { randomBytes } from 'node:crypto';
import { ReliableLayer } from './reliable.js';
import { TlsSession, type TlsSettings } from './tls-session.js';
import type { DataChannelKey } from './datachannel.js';
import type { DecodedKeyMethod2 } from './keymethod.js';

/**
 * Where one key state (one key_id: a TLS session and the data keys made from it) stands, as OpenVPN's
 * ssl.c names the steps: initial → pre-start (our reset sent) → start (TLS running) → sent-key (our
 * key-method message written) → got-key (the server's read) → active (data keys installed).
 */
export type KeyStatePhase = 'initial' | 'pre-start' | 'start' | 'sent-key' | 'got-key' | 'active' | 'failed';

export interface KeySource {
  preMaster: Buffer;
  random1: Buffer;
  random2: Buffer;
}

/** One key_id's control channel (reliability layer + TLS) and, once active, its data-channel key. */
export class KeyState {
  phase: KeyStatePhase = 'initial';
  readonly reliable: ReliableLayer;
  readonly tls: TlsSession;
  /** Our pre_master and randoms for the key-method message (also the PRF inputs). */
  readonly keySource: KeySource;
  serverKeyMethod: DecodedKeyMethod2 | undefined;
  data: DataChannelKey | undefined;
  /** Plaintext from TLS not yet consumed (the server's key-method message may arrive in pieces). */
  pendingPlain: Buffer = Buffer.alloc(0);
  /** When this key state started (ms), for hand-window. */
  readonly startedAt: number;

  constructor(
    readonly keyId: number,
    opts: {
      localSessionId: Buffer;
      remoteSessionId?: Buffer;
      tls: TlsSettings;
      tlsTimeoutMs: number;
      wrapOverhead: (opcode: number) => number;
      maxAcksPerPacket: number;
      wkcCapable: boolean;
      now: number;
      onCiphertext: (bytes: Buffer) => void;
    },
  ) {
    this.reliable = new ReliableLayer({
      keyId,
      localSessionId: opts.localSessionId,
      remoteSessionId: opts.remoteSessionId,
      tlsTimeoutMs: opts.tlsTimeoutMs,
      wrapOverhead: opts.wrapOverhead,
      maxAcksPerPacket: opts.maxAcksPerPacket,
      maxAcksPerAckPacket: opts.maxAcksPerPacket,
      wkcCapable: opts.wkcCapable,
    });
    this.tls = new TlsSession(opts.tls, opts.onCiphertext);
    const r = randomBytes(112);
    this.keySource = { preMaster: r.subarray(0, 48), random1: r.subarray(48, 80), random2: r.subarray(80, 112) };
    this.startedAt = opts.now;
  }

  destroy(): void {
    this.tls.destroy();
    this.keySource.preMaster.fill(0);
  }
}

/** A fresh random, non-zero 8-byte session id. */
export function newSessionId(): Buffer {
  for (;;) {
    const id = randomBytes(8);
    if (!id.every((b) => b === 0)) return id;
  }
}
