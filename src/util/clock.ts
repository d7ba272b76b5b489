/**
 * Injectable time. Protocol cores never call Date.now() or setTimeout themselves: they take `now` (ms) as
 * an argument and report their next deadline; drivers own one timer each. Tests use ManualClock.
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Wall-clock seconds since the epoch (for protocol fields such as OpenVPN's net_time). */
  unixSeconds(): number;
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export type TimerHandle = { readonly id: number };

export class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;
  now(): number {
    return performance.now();
  }
  unixSeconds(): number {
    return Math.floor(Date.now() / 1000);
  }
  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    const t = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, Math.max(0, delayMs));
    this.timers.set(id, t);
    return { id };
  }
  clearTimer(handle: TimerHandle): void {
    const t = this.timers.get(handle.id);
    if (t) {
      clearTimeout(t);
      this.timers.delete(handle.id);
    }
  }
}

/** A simulated clock for tests: time moves only when advance() is called; due timers fire in order. */
export class ManualClock implements Clock {
  private t: number;
  private readonly epochSeconds: number;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;
  constructor(startMs = 0, epochSeconds = 1_700_000_000) {
    this.t = startMs;
    this.epochSeconds = epochSeconds;
  }
  now(): number {
    return this.t;
  }
  unixSeconds(): number {
    return this.epochSeconds + Math.floor(this.t / 1000);
  }
  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, delayMs), fn });
    return { id };
  }
  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }
  /** Move time forward by ms, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, tm] of this.timers) {
        if (tm.at < nextAt || (tm.at === nextAt && id < nextId)) {
          nextAt = tm.at;
          nextId = id;
        }
      }
      if (nextId < 0 || nextAt > end) break;
      const tm = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.t = Math.max(this.t, tm.at);
      tm.fn();
    }
    this.t = end;
  }
  pendingTimers(): number {
    return this.timers.size;
  }
}
