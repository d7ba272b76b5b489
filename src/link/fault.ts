/**
 * A seeded fault injector Link decorator for stack tests (after smoltcp's FaultInjector): drops,
 * duplicates, reorders and corrupts packets with given probabilities, deterministically for a seed.
 *
 * Per packet the PRNG is consulted in a fixed order (drop, corrupt, duplicate, reorder, then the corrupt
 * position when corrupting), so a seed always yields the same decisions for the same packet sequence.
 * Reorder holds one packet per direction and releases it right after the next packet in that direction;
 * if none comes, it is released after reorderDelayMs on `clock` (when given) or on the next microtask.
 */
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Link, LinkConfig, PacketHandler } from './link.js';

export interface FaultOptions {
  /** Probabilities in [0, 1]. */
  drop?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  /** PRNG seed (default 1). */
  seed?: number;
  /** Time source for releasing held (reordered) packets; without one they are released on a microtask. */
  clock?: Clock;
  /** With a clock: how long a reordered packet waits at most for a successor (default 5 ms). */
  reorderDelayMs?: number;
  /** Which direction(s) to disturb (default both). */
  direction?: 'both' | 'out' | 'in';
}

export interface FaultCounters {
  /** Packets that entered the injector. */
  packets: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  /** Packets handed on (duplicates count twice). */
  delivered: number;
}

export interface FaultLink extends Link {
  readonly counters: { readonly out: FaultCounters; readonly in: FaultCounters };
  /** Change probabilities at run time (e.g. drop: 1 for an outage). Seed and clock stay. */
  setFaults(p: Pick<FaultOptions, 'drop' | 'duplicate' | 'reorder' | 'corrupt' | 'direction'>): void;
  /** Deliver any held packet now. */
  flush(): void;
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function zero(): FaultCounters {
  return { packets: 0, dropped: 0, duplicated: 0, reordered: 0, corrupted: 0, delivered: 0 };
}

interface Lane {
  counters: FaultCounters;
  held: Uint8Array | undefined;
  timer: TimerHandle | undefined;
  /** Bumped whenever the held packet changes, so a stale microtask release does nothing. */
  gen: number;
  deliver: (p: Uint8Array) => void;
}

export function withFaults(link: Link, opts: FaultOptions = {}): FaultLink {
  const rand = mulberry32(opts.seed ?? 1);
  const p = { drop: 0, duplicate: 0, reorder: 0, corrupt: 0, direction: 'both' as 'both' | 'out' | 'in' };
  const set = (o: Pick<FaultOptions, 'drop' | 'duplicate' | 'reorder' | 'corrupt' | 'direction'>): void => {
    for (const k of ['drop', 'duplicate', 'reorder', 'corrupt'] as const) {
      const v = o[k];
      if (v !== undefined) {
        if (!(v >= 0 && v <= 1)) throw new RangeError(`fault probability ${k}=${v} not in [0, 1]`);
        p[k] = v;
      }
    }
    if (o.direction) p.direction = o.direction;
  };
  set(opts);
  const clock = opts.clock;
  const delay = opts.reorderDelayMs ?? 5;

  let inHandler: PacketHandler = () => {};
  const out: Lane = { counters: zero(), held: undefined, timer: undefined, gen: 0, deliver: (pkt) => link.send(pkt) };
  const inn: Lane = { counters: zero(), held: undefined, timer: undefined, gen: 0, deliver: (pkt) => inHandler(pkt) };

  const emit = (lane: Lane, pkt: Uint8Array): void => {
    lane.counters.delivered++;
    lane.deliver(pkt);
  };

  const release = (lane: Lane): void => {
    const h = lane.held;
    if (!h) return;
    lane.held = undefined;
    lane.gen++;
    if (lane.timer && clock) clock.clearTimer(lane.timer);
    lane.timer = undefined;
    emit(lane, h);
  };

  const process = (lane: Lane, active: boolean, pkt: Uint8Array): void => {
    const c = lane.counters;
    c.packets++;
    if (!active) {
      emit(lane, pkt);
      return;
    }
    const rDrop = rand();
    const rCorrupt = rand();
    const rDup = rand();
    const rReorder = rand();
    if (rDrop < p.drop) {
      c.dropped++;
      return;
    }
    let pk = pkt;
    if (rCorrupt < p.corrupt && pkt.length > 0) {
      pk = Uint8Array.from(pkt);
      const pos = Math.floor(rand() * pk.length);
      const bit = Math.floor(rand() * 8);
      pk[pos]! ^= 1 << bit;
      c.corrupted++;
    }
    const dup = rDup < p.duplicate;
    if (rReorder < p.reorder && !lane.held) {
      c.reordered++;
      lane.held = pk;
      const gen = ++lane.gen;
      if (clock) lane.timer = clock.setTimer(() => release(lane), delay);
      else queueMicrotask(() => {
        if (lane.gen === gen) release(lane);
      });
      if (dup) {
        c.duplicated++;
        emit(lane, Uint8Array.from(pk));
      }
      return;
    }
    emit(lane, pk);
    if (dup) {
      c.duplicated++;
      emit(lane, Uint8Array.from(pk));
    }
    release(lane);
  };

  return {
    send(packet: Uint8Array): void {
      process(out, p.direction !== 'in', packet);
    },
    onReceive(handler: PacketHandler): void {
      inHandler = handler;
      link.onReceive((packet) => process(inn, p.direction !== 'out', packet));
    },
    get config(): LinkConfig | undefined {
      return link.config;
    },
    get mtu(): number {
      return link.mtu;
    },
    counters: { out: out.counters, in: inn.counters },
    setFaults: set,
    flush(): void {
      release(out);
      release(inn);
    },
  };
}
