/**
 * Congestion control behind one small interface (after gVisor's reno.go / cubic.go): NewReno (RFC 5681,
 * byte counting per RFC 3465) and CUBIC (RFC 9438). Windows are in bytes. Loss recovery itself (what to
 * retransmit, when a loss is declared) lives in the connection; these only size the window.
 */

export interface CongestionControl {
  readonly name: 'newreno' | 'cubic';
  /** Congestion window in bytes. */
  cwnd: number;
  ssthresh: number;
  /**
   * Bytes newly delivered (cumulatively acknowledged or SACKed) outside recovery. `cwndLimited` tells
   * whether the sender was actually using the window (no growth for application-limited flows).
   */
  onAck(acked: number, now: number, minRttMs: number, cwndLimited: boolean): void;
  /** A loss was detected (fast retransmit / RACK): entering recovery. Called once per recovery episode. */
  onLoss(now: number, inFlight: number): void;
  /** The retransmission timer expired. */
  onRto(now: number, inFlight: number): void;
  /** Path MSS changed (e.g. frag-needed). */
  setMss(mss: number): void;
}

export type CongestionAlgorithm = 'newreno' | 'cubic';

export function createCongestionControl(alg: CongestionAlgorithm, mss: number, initialWindowSegments = 10): CongestionControl {
  return alg === 'newreno' ? new NewReno(mss, initialWindowSegments) : new Cubic(mss, initialWindowSegments);
}

/** RFC 6928 style initial window: iw segments (we use 10), bounded by MSS like Linux. */
function initialWindow(mss: number, iw: number): number {
  return iw * mss;
}

export class NewReno implements CongestionControl {
  readonly name = 'newreno' as const;
  cwnd: number;
  ssthresh = 0x7fffffff;
  private acc = 0;
  constructor(
    private mss: number,
    iw = 10,
  ) {
    this.cwnd = initialWindow(mss, iw);
  }
  setMss(mss: number): void {
    this.mss = mss;
  }
  onAck(acked: number, _now: number, _minRtt: number, cwndLimited: boolean): void {
    if (!cwndLimited) return;
    if (this.cwnd < this.ssthresh) {
      // slow start with appropriate byte counting (L = 2 MSS per ACK)
      this.cwnd += Math.min(acked, 2 * this.mss);
      return;
    }
    this.acc += acked;
    if (this.acc >= this.cwnd) {
      this.acc -= this.cwnd;
      this.cwnd += this.mss;
    }
  }
  onLoss(_now: number, inFlight: number): void {
    this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * this.mss);
    this.cwnd = this.ssthresh;
    this.acc = 0;
  }
  onRto(_now: number, inFlight: number): void {
    this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * this.mss);
    this.cwnd = this.mss;
    this.acc = 0;
  }
}

const CUBIC_C = 0.4;
const CUBIC_BETA = 0.7;

/** CUBIC per RFC 9438 with fast convergence and the Reno-friendly region; time in ms, windows in bytes. */
export class Cubic implements CongestionControl {
  readonly name = 'cubic' as const;
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** Window (segments) before the last reduction. */
  private wMax = 0;
  private k = 0;
  private epochStart = -1;
  /** Reno-friendly estimate (segments). */
  private wEst = 0;
  private cwndAtEpoch = 0;
  constructor(
    private mss: number,
    iw = 10,
  ) {
    this.cwnd = initialWindow(mss, iw);
  }
  setMss(mss: number): void {
    this.mss = mss;
  }
  onAck(acked: number, now: number, minRttMs: number, cwndLimited: boolean): void {
    if (!cwndLimited) return;
    const mss = this.mss;
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * mss);
      return;
    }
    const cwndSeg = this.cwnd / mss;
    if (this.epochStart < 0) {
      this.epochStart = now;
      this.cwndAtEpoch = cwndSeg;
      this.wEst = cwndSeg;
      if (this.wMax <= cwndSeg) {
        this.k = 0;
        this.wMax = cwndSeg;
      } else {
        this.k = Math.cbrt((this.wMax - cwndSeg) / CUBIC_C);
      }
    }
    const rtt = Math.max(minRttMs, 1);
    const t = (now - this.epochStart + rtt) / 1000;
    let target = CUBIC_C * (t - this.k) ** 3 + this.wMax;
    if (target < cwndSeg) target = cwndSeg;
    else if (target > 1.5 * cwndSeg) target = 1.5 * cwndSeg;
    // Reno-friendly region (RFC 9438 §4.3)
    const alpha = this.wEst < this.wMax ? (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA) : 1;
    this.wEst += (alpha * (acked / mss)) / cwndSeg;
    let next: number;
    if (this.wEst > target) next = cwndSeg + ((this.wEst - cwndSeg) * (acked / mss)) / cwndSeg;
    else next = cwndSeg + ((target - cwndSeg) * (acked / mss)) / cwndSeg;
    if (next > cwndSeg) this.cwnd = Math.floor(next * mss);
  }
  private reduce(inFlight: number): void {
    const cwndSeg = this.cwnd / this.mss;
    // fast convergence
    this.wMax = cwndSeg < this.wMax ? (cwndSeg * (1 + CUBIC_BETA)) / 2 : cwndSeg;
    const base = Math.max(this.cwnd, Math.min(inFlight, this.cwnd));
    this.ssthresh = Math.max(Math.floor(base * CUBIC_BETA), 2 * this.mss);
    this.epochStart = -1;
  }
  onLoss(_now: number, inFlight: number): void {
    this.reduce(inFlight);
    this.cwnd = this.ssthresh;
  }
  onRto(_now: number, inFlight: number): void {
    this.reduce(inFlight);
    this.cwnd = this.mss;
  }
  /** For tests. */
  get wMaxSegments(): number {
    return this.wMax;
  }
  get epochCwnd(): number {
    return this.cwndAtEpoch;
  }
}
