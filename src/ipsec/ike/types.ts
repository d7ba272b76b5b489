/**
 * The initiator's interface (ike/initiator.ts): its configuration, the CHILD_SA it hands over, and the events
 * the session carries out.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { KeyExchange } from '../../crypto/dh.js';
import type { EspSuite } from '../../crypto/ipsec-algorithms.js';
import type { Logger } from '../../util/log.js';
import type { IdPayload, TrafficSelector } from '../../wire/ike-payloads.js';
import type { ChildKeys } from '../ike-keys.js';
import type { RetransmitPolicy } from './exchange.js';
import type { CpReply } from './messages.js';
import type { EspOffer, IkeOffer, IkeSuite } from './proposals.js';
import type { TaskEvent } from './task-manager.js';

export interface InitiatorConfig {
  ike: readonly IkeOffer[];
  esp: readonly EspOffer[];
  localId: IdPayload;
  /** The gateway's identity: sent as IDr and required of its IDr; undefined = any. */
  remoteId?: IdPayload;
  /** The pre-shared key (auth = psk on either side). */
  psk?: Uint8Array;
  /** How we authenticate (default: psk). */
  localAuth?: LocalAuth;
  /** How the gateway must authenticate (default: psk). */
  remoteAuth?: RemoteAuth;
  /** The gateway's address and the port of our first message, for the NAT_DETECTION_DESTINATION_IP hash. */
  remoteAddress: string;
  remotePort: number;
  tsi: readonly TrafficSelector[];
  tsr: readonly TrafficSelector[];
  /** The virtual IP to ask for (undefined or '0.0.0.0': any). */
  vip?: string;
  /** The IPv6 virtual IP to ask for as well ('::': any); undefined: none asked. */
  vip6?: string;
  retransmit?: RetransmitPolicy;
  /**
   * IKE fragmentation (RFC 7383), swanctl's fragmentation: yes (default) = announce it and send fragments when
   * the gateway supports it too, accept = announce it and take fragments but send none, no = neither.
   */
  fragmentation?: 'yes' | 'accept' | 'no';
  /** The largest IKE message (header included, non-ESP marker not) before fragmenting; default 1248 (a 1280-byte IPv4 datagram). */
  fragmentLimit?: number;
  /** Rekey the IKE SA after this many seconds (rekey_time; 0 or undefined: never), less up to ikeRandSeconds. */
  ikeRekeySeconds?: number;
  ikeRandSeconds?: number;
  /** Our liveness check (DPD) after this many seconds without anything from the gateway (dpd_delay; 0: none). */
  dpdDelaySeconds?: number;
  /** Our liveness check gives up after this many seconds (dpd_timeout; 0: when its retransmissions run out). */
  dpdTimeoutSeconds?: number;
  /** What has come in from the gateway so far (ESP packets and IKE messages), for DPD. */
  inboundCount?: () => number;
  /** Uniform [0, 1) for rand_time (tests fix it). */
  uniform?: () => number;
  /** Random bytes (SPIs, nonces, IVs, padding); tests inject their own. */
  random?: (n: number) => Uint8Array;
  /** Key exchange factory (tests inject fixed values). */
  keyExchange?: (group: number) => KeyExchange;
  logger?: Logger;
}

export type LocalAuth =
  | { kind: 'psk' }
  /** Our certificate (DER, end-entity first, then intermediates to send) and its private key. */
  | { kind: 'pubkey'; certs: readonly Uint8Array[]; key: KeyObject }
  /** EAP-MSCHAPv2 (with EAP-Identity) as `identity`. */
  | { kind: 'eap'; identity: string; password: string | Uint8Array };

export type RemoteAuth = { kind: 'psk' } | { kind: 'pubkey'; cas: readonly X509Certificate[] };

/** The CHILD_SA keyed by IKE_AUTH, ready for OutboundSa/InboundSa. */
export interface EstablishedChild {
  suite: EspSuite;
  esn: boolean;
  /** The gateway's inbound SPI: ours outbound. */
  spiOut: number;
  /** Our inbound SPI. */
  spiIn: number;
  /** initiator = our outbound keys, responder = our inbound keys. */
  keys: ChildKeys;
  tsi: TrafficSelector[];
  tsr: TrafficSelector[];
}

export interface Established {
  spiI: string;
  spiR: string;
  suite: IkeSuite;
  remoteId: string;
  cp: CpReply;
  child: EstablishedChild;
}

export type InitiatorEvent =
  | TaskEvent
  /** Move to the gateway's port 4500 (non-ESP marker) before sending what follows. */
  | { type: 'float' }
  | { type: 'established'; sa: Established };
