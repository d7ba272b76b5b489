/** Counters shared by the stack and its connections (plain object, mutated in place). */
export interface TcpStats {
  segmentsIn: number;
  segmentsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Segments dropped: bad checksum or header. */
  badSegments: number;
  /** Segments retransmitted (RTO, fast/SACK recovery, TLP). */
  retransmits: number;
  rtoExpirations: number;
  tailLossProbes: number;
  /** Recovery episodes entered on a detected loss (not RTO). */
  fastRecoveries: number;
  /** Segments that arrived out of order (queued for reassembly). */
  outOfOrderIn: number;
  /** Segments that were entirely duplicate. */
  duplicateIn: number;
  rstsSent: number;
  rstsReceived: number;
  challengeAcks: number;
  pawsDrops: number;
  activeOpens: number;
  passiveOpens: number;
  /** Connections currently in the table (TIME_WAIT included). */
  connections: number;
  timeWait: number;
  connectFailures: number;
  /** Largest window we advertised (bytes, after scaling). */
  maxAdvertisedWindow: number;
  /** Largest window a peer offered us (bytes, after scaling). */
  maxPeerWindow: number;
  zeroWindowProbes: number;
  keepAliveProbes: number;
}

export function newTcpStats(): TcpStats {
  return {
    segmentsIn: 0,
    segmentsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    badSegments: 0,
    retransmits: 0,
    rtoExpirations: 0,
    tailLossProbes: 0,
    fastRecoveries: 0,
    outOfOrderIn: 0,
    duplicateIn: 0,
    rstsSent: 0,
    rstsReceived: 0,
    challengeAcks: 0,
    pawsDrops: 0,
    activeOpens: 0,
    passiveOpens: 0,
    connections: 0,
    timeWait: 0,
    connectFailures: 0,
    maxAdvertisedWindow: 0,
    maxPeerWindow: 0,
    zeroWindowProbes: 0,
    keepAliveProbes: 0,
  };
}
