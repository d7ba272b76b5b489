/**
 * A binary min-heap of (deadline, item) with lazy invalidation: the TCP stack keeps ONE clock timer armed at
 * the heap's earliest deadline. A connection whose deadline moves later is not touched in the heap (its old
 * entry fires early, finds nothing due and re-queues the real deadline); one that moves earlier gets a new
 * entry and the old one becomes garbage that is skipped when popped. So re-arming the retransmission timer
 * on every ACK costs nothing here, and the clock sees a setTimer only when the earliest deadline moves
 * earlier.
 */
export class DeadlineHeap<T> {
  private times: number[] = [];
  private items: T[] = [];

  get size(): number {
    return this.times.length;
  }

  push(at: number, item: T): void {
    const times = this.times;
    const items = this.items;
    let i = times.length;
    times.push(at);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p]! <= at) break;
      times[i] = times[p]!;
      items[i] = items[p]!;
      i = p;
    }
    times[i] = at;
    items[i] = item;
  }

  /** Earliest deadline, Infinity when empty. */
  peekTime(): number {
    return this.times.length ? this.times[0]! : Infinity;
  }

  peekItem(): T | undefined {
    return this.items[0];
  }

  /** Remove the earliest entry (caller read it with peek*). */
  pop(): void {
    const times = this.times;
    const items = this.items;
    const n = times.length - 1;
    if (n < 0) return;
    const lastT = times[n]!;
    const lastI = items[n]!;
    times.pop();
    items.pop();
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && times[r]! < times[l]! ? r : l;
      if (times[c]! >= lastT) break;
      times[i] = times[c]!;
      items[i] = items[c]!;
      i = c;
    }
    times[i] = lastT;
    items[i] = lastI;
  }

  clear(): void {
    this.times = [];
    this.items = [];
  }
}
