/**
 * Packet buffers carved out of large slabs, for the per-packet hot paths (IP packets we build, encrypted
 * datagrams). Every Uint8Array over 64 bytes that V8 allocates on its own gets a separate zero-filled
 * backing store (calloc) that the garbage collector must track and sweep after each scavenge, and on a
 * small machine that sweeping runs on background threads competing with everything else. A view into a
 * slab is just a small heap object.
 *
 * Memory is never reused: each allocation takes fresh bytes (zero-filled, like `new Uint8Array(n)`),
 * and a slab is freed by the garbage collector once no view into it is referenced. So a view may be
 * kept (queued in a socket, held by a consumer) as long as its holder wants, at the cost of keeping its
 * slab alive.
 */
export class Slab {
  private ab: ArrayBuffer;
  private off = 0;

  constructor(
    /** Bytes per slab; requests larger than a quarter of it get their own buffer. */
    private readonly slabSize = 256 * 1024,
  ) {
    this.ab = new ArrayBuffer(slabSize);
  }

  /** A zero-filled Uint8Array of n bytes. */
  bytes(n: number): Uint8Array {
    if (n > this.slabSize >>> 2) return new Uint8Array(n);
    const at = this.take(n);
    return new Uint8Array(this.ab, at, n);
  }

  /** A zero-filled Buffer of n bytes. */
  buffer(n: number): Buffer {
    if (n > this.slabSize >>> 2) return Buffer.alloc(n);
    const at = this.take(n);
    return Buffer.from(this.ab, at, n);
  }

  private take(n: number): number {
    if (this.off + n > this.slabSize) {
      this.ab = new ArrayBuffer(this.slabSize);
      this.off = 0;
    }
    const at = this.off;
    // 8-byte alignment, as Node's own pool keeps it
    this.off = (at + n + 7) & ~7;
    return at;
  }
}

/** The process-wide slab for packets (single-threaded: no locking needed). */
export const packetSlab = new Slab();
