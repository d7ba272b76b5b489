/**
 * Key lifetimes, shared by every protocol that rekeys: OpenVPN's data-channel keys (`reneg-sec`,
 * `reneg-bytes`, `reneg-pkts`), ESP SAs and IKE SAs (RFC 4301 §4.4.2.1: soft and hard lifetimes by time,
 * bytes and packets). A soft limit means "start a rekey now"; a hard limit means "stop using this key".
 *
 * Sans-I/O: the owner counts traffic with count(), asks stageAt(now) and schedules its own timer from
 * nextDeadline(). Nothing here keeps a timer.
 */

export interface LifetimeLimits {
  /** Seconds since the key was installed. */
  readonly seconds?: number;
  /** Bytes protected with the key (the owner decides which bytes: both directions for OpenVPN, one for ESP). */
  readonly bytes?: number;
  /** Packets protected with the key. */
  readonly packets?: number;
}

export interface LifetimePolicy {
  /** Start a rekey when any of these is reached. */
  readonly soft?: LifetimeLimits;
  /** Stop using the key when any of these is reached. */
  readonly hard?: LifetimeLimits;
}

export type LifetimeStage = 'fresh' | 'soft' | 'hard';

const positive = (n: number | undefined): number | undefined => (n !== undefined && Number.isFinite(n) && n > 0 ? n : undefined);

function clean(l: LifetimeLimits | undefined): LifetimeLimits {
  return { seconds: positive(l?.seconds), bytes: positive(l?.bytes), packets: positive(l?.packets) };
}

export class KeyLifetime {
  readonly startedAt: number;
  private readonly soft: LifetimeLimits;
  private readonly hard: LifetimeLimits;
  private nBytes = 0;
  private nPackets = 0;
  /** Stage reached by traffic alone (time is added in stageAt). */
  private byTraffic: LifetimeStage = 'fresh';

  constructor(policy: LifetimePolicy, startedAtMs: number) {
    this.startedAt = startedAtMs;
    this.soft = clean(policy.soft);
    this.hard = clean(policy.hard);
  }

  get bytes(): number {
    return this.nBytes;
  }

  get packets(): number {
    return this.nPackets;
  }

  /** True when no limit at all is set (the key lives forever). */
  get unlimited(): boolean {
    const s = this.soft;
    const h = this.hard;
    return [s.seconds, s.bytes, s.packets, h.seconds, h.bytes, h.packets].every((v) => v === undefined);
  }

  /**
   * Counts traffic protected with this key. Returns the new stage when this call moved it (from fresh to
   * soft, or to hard), else undefined, so the hot path tests one value.
   */
  count(packets: number, bytes: number): LifetimeStage | undefined {
    this.nPackets += packets;
    this.nBytes += bytes;
    const before = this.byTraffic;
    if (before === 'hard') return undefined;
    let now: LifetimeStage = before;
    if (reached(this.hard, this.nPackets, this.nBytes)) now = 'hard';
    else if (before === 'fresh' && reached(this.soft, this.nPackets, this.nBytes)) now = 'soft';
    if (now === before) return undefined;
    this.byTraffic = now;
    return now;
  }

  /** The stage at time `nowMs`, by traffic and by age. */
  stageAt(nowMs: number): LifetimeStage {
    const age = (nowMs - this.startedAt) / 1000;
    if (this.byTraffic === 'hard' || (this.hard.seconds !== undefined && age >= this.hard.seconds)) return 'hard';
    if (this.byTraffic === 'soft' || (this.soft.seconds !== undefined && age >= this.soft.seconds)) return 'soft';
    return 'fresh';
  }

  /** When the next time-based stage change happens (ms), or undefined when none is ahead. */
  nextDeadline(nowMs: number): number | undefined {
    const stage = this.stageAt(nowMs);
    if (stage === 'hard') return undefined;
    const at = (s: number | undefined) => (s === undefined ? Infinity : this.startedAt + s * 1000);
    const next = stage === 'fresh' ? Math.min(at(this.soft.seconds), at(this.hard.seconds)) : at(this.hard.seconds);
    return next === Infinity ? undefined : next;
  }

  /** What is left before the soft and hard limits, for status pages (undefined = no such limit). */
  remaining(nowMs: number): { soft: LifetimeLimits; hard: LifetimeLimits } {
    const left = (l: LifetimeLimits): LifetimeLimits => ({
      seconds: l.seconds === undefined ? undefined : Math.max(0, l.seconds - (nowMs - this.startedAt) / 1000),
      bytes: l.bytes === undefined ? undefined : Math.max(0, l.bytes - this.nBytes),
      packets: l.packets === undefined ? undefined : Math.max(0, l.packets - this.nPackets),
    });
    return { soft: left(this.soft), hard: left(this.hard) };
  }
}

function reached(l: LifetimeLimits, packets: number, bytes: number): boolean {
  return (l.packets !== undefined && packets >= l.packets) || (l.bytes !== undefined && bytes >= l.bytes);
}

/**
 * A soft limit made a little random, so two peers with the same configuration do not rekey at the same
 * instant (strongSwan's rand_time / rand_bytes / rand_packets: the rekey happens up to `jitter` earlier).
 */
export function jittered(limit: number | undefined, jitter: number | undefined, random: () => number = Math.random): number | undefined {
  if (limit === undefined || !jitter || jitter <= 0) return limit;
  return Math.max(1, limit - Math.floor(random() * Math.min(jitter, limit - 1)));
}
