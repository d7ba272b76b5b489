/**
 * Small builders and readers of IKEv2 payloads for the initiator (RFC 7296 §3): notifies, the configuration
 * payload (CFG_REQUEST for an IPv4 address, DNS servers and, RFC 8598, DNS domains, and with an IPv6 virtual IP
 * wanted an IPv6 address and IPv6 DNS servers; CFG_REPLY read back),
 * the error notifies of a response mapped to VpnErrors, and a log line per message.
 */
import { VpnError, type ErrorCode } from '../../errors.js';
import type { CloseReason } from '../../session/types.js';
import { CpAttr, CpType, NOTIFY_STATUS_MIN, NotifyType, PayloadType, exchangeName, notifyName } from '../../wire/ike-constants.js';
import { describePayloads, type IkeHeader, type IkePayload } from '../../wire/ike.js';
import { buildCp, buildNotify, parseCp, parseNotify, type NotifyPayload } from '../../wire/ike-payloads.js';
import { ipv6ToString, parseIpv6Address } from '../../wire/ipv6.js';

export const payload = (type: number, body: Uint8Array): IkePayload => ({ type, critical: false, body });

/** A Notify payload about the IKE SA (protocol 0, no SPI) or, with `protocol`/`spi`, about a CHILD_SA. */
export function notify(type: number, data: Uint8Array = new Uint8Array(0), protocol = 0, spi: Uint8Array = new Uint8Array(0)): IkePayload {
  return payload(PayloadType.NOTIFY, buildNotify({ protocol, spi, type, data }));
}

/** The notifies of a chain, decoded (malformed ones are skipped). */
export function notifies(payloads: readonly IkePayload[]): NotifyPayload[] {
  const out: NotifyPayload[] = [];
  for (const p of payloads) {
    if (p.type !== PayloadType.NOTIFY) continue;
    try {
      out.push(parseNotify(p.body));
    } catch {
      // a malformed notify carries nothing we can act on
    }
  }
  return out;
}

export function findNotify(payloads: readonly IkePayload[], type: number): NotifyPayload | undefined {
  return notifies(payloads).find((n) => n.type === type);
}

/** The error notifies (types below 16384) of a message. */
export function errorNotifies(payloads: readonly IkePayload[]): NotifyPayload[] {
  return notifies(payloads).filter((n) => n.type < NOTIFY_STATUS_MIN);
}

export function firstOfType(payloads: readonly IkePayload[], type: number): IkePayload | undefined {
  return payloads.find((p) => p.type === type);
}

const ipv4Text = (b: Uint8Array) => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;

/**
 * CFG_REQUEST: INTERNAL_IP4_ADDRESS (empty = any, or the address we would like), _DNS and DNS domains; with
 * `vip6` (like strongSwan, only when the connection's vips name an IPv6 address: '::' = any) also
 * INTERNAL_IP6_ADDRESS (empty, or the address with prefix length 128, RFC 7296 §3.15.1) and INTERNAL_IP6_DNS.
 */
export function cpRequest(vip?: string, vip6?: string): IkePayload {
  const want = vip && vip !== '0.0.0.0' ? Uint8Array.from(vip.split('.').map(Number)) : new Uint8Array(0);
  const v6 =
    vip6 === undefined
      ? []
      : [
          { type: CpAttr.INTERNAL_IP6_ADDRESS, value: vip6 === '::' ? new Uint8Array(0) : Uint8Array.from([...parseIpv6Address(vip6), 128]) },
          { type: CpAttr.INTERNAL_IP6_DNS, value: new Uint8Array(0) },
        ];
  return payload(
    PayloadType.CP,
    buildCp({
      type: CpType.REQUEST,
      attributes: [
        { type: CpAttr.INTERNAL_IP4_ADDRESS, value: want },
        { type: CpAttr.INTERNAL_IP4_DNS, value: new Uint8Array(0) },
        ...v6,
        { type: CpAttr.INTERNAL_DNS_DOMAIN, value: new Uint8Array(0) },
      ],
    }),
  );
}

export interface CpReply {
  vip?: string;
  netmask?: string;
  dns: string[];
  /** INTERNAL_IP6_ADDRESS: our IPv6 address and its prefix length. */
  vip6?: string;
  prefix6?: number;
  /** INTERNAL_IP6_DNS servers. */
  dns6: string[];
  domains: string[];
  /** INTERNAL_IP4_SUBNET entries as CIDRs (informational; the routes come from TSr). */
  subnets: string[];
}

/** The CFG_REPLY of an IKE_AUTH response (an absent CP gives an empty reply). */
export function readCpReply(payloads: readonly IkePayload[]): CpReply {
  const out: CpReply = { dns: [], dns6: [], domains: [], subnets: [] };
  const p = firstOfType(payloads, PayloadType.CP);
  if (!p) return out;
  const cp = parseCp(p.body);
  if (cp.type !== CpType.REPLY) return out;
  for (const a of cp.attributes) {
    const v = a.value;
    switch (a.type) {
      case CpAttr.INTERNAL_IP4_ADDRESS:
        if (v.length === 4 && out.vip === undefined) out.vip = ipv4Text(v);
        break;
      case CpAttr.INTERNAL_IP4_NETMASK:
        if (v.length === 4) out.netmask = ipv4Text(v);
        break;
      case CpAttr.INTERNAL_IP4_DNS:
        if (v.length === 4) out.dns.push(ipv4Text(v));
        break;
      case CpAttr.INTERNAL_IP6_ADDRESS:
        if (v.length === 17 && v[16]! <= 128 && out.vip6 === undefined) {
          out.vip6 = ipv6ToString(v.subarray(0, 16));
          out.prefix6 = v[16]!;
        }
        break;
      case CpAttr.INTERNAL_IP6_DNS:
        if (v.length === 16) out.dns6.push(ipv6ToString(v));
        break;
      case CpAttr.INTERNAL_DNS_DOMAIN: {
        const d = Buffer.from(v).toString('ascii').replace(/\.$/, '');
        if (/^[a-z0-9.-]+$/i.test(d)) out.domains.push(d);
        break;
      }
      case CpAttr.INTERNAL_IP4_SUBNET:
        if (v.length === 8) {
          const mask = ((v[4]! << 24) | (v[5]! << 16) | (v[6]! << 8) | v[7]!) >>> 0;
          let prefix = 0;
          while (prefix < 32 && (mask & (0x80000000 >>> prefix)) !== 0) prefix++;
          if ((prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0) === mask) out.subnets.push(`${ipv4Text(v)}/${prefix}`);
        }
        break;
    }
  }
  return out;
}

/** How an error notify in a response ends the attempt. */
export interface NotifyFailure {
  reason: CloseReason;
  error: VpnError;
}

/**
 * The VpnError for an error notify of the gateway. `offered` describes our proposals of the exchange, for
 * NO_PROPOSAL_CHOSEN; `ts` our traffic selectors, for TS_UNACCEPTABLE.
 */
export function notifyFailure(n: NotifyPayload, exchange: number, ctx: { offered: string; ts?: string; localId?: string; remoteId?: string; credential?: string }): NotifyFailure {
  const name = notifyName(n.type);
  const ex = exchangeName(exchange);
  const fail = (code: ErrorCode, msg: string, reason: CloseReason = 'protocol-error'): NotifyFailure => ({ reason, error: new VpnError(code, msg) });
  switch (n.type) {
    case NotifyType.AUTHENTICATION_FAILED:
      // The gateway says no more: list what it may have refused (strongSwan answers the same to a wrong key, an
      // identity it has no connection for, and an IDr it does not own).
      return fail(
        'AUTH_FAILED',
        `the gateway refused our authentication (AUTHENTICATION_FAILED): a wrong ${ctx.credential ?? 'pre-shared key'}, our identity${ctx.localId ? ` '${ctx.localId}'` : ''} unknown to it` +
          (ctx.remoteId ? `, or no identity '${ctx.remoteId}' on the gateway (remote id, sent as IDr)` : ''),
        'auth-failed',
      );
    case NotifyType.NO_PROPOSAL_CHOSEN:
      return fail('NO_SHARED_CIPHER', `the gateway accepted none of our ${exchange === 35 ? 'ESP' : 'IKE'} proposals (NO_PROPOSAL_CHOSEN in ${ex}); we offered ${ctx.offered}`);
    case NotifyType.TS_UNACCEPTABLE:
    case NotifyType.INVALID_SELECTORS:
    case NotifyType.SINGLE_PAIR_REQUIRED:
      return fail('TS_UNACCEPTABLE', `the gateway refused our traffic selectors (${name})${ctx.ts ? `: ${ctx.ts}` : ''}; check remote_ts / local_ts against its local_ts`);
    case NotifyType.INTERNAL_ADDRESS_FAILURE:
      return fail('PROTOCOL', 'the gateway could not assign a virtual IP (INTERNAL_ADDRESS_FAILURE): its pool may be exhausted or missing');
    case NotifyType.FAILED_CP_REQUIRED:
      return fail('PROTOCOL', 'the gateway requires a configuration request it did not accept (FAILED_CP_REQUIRED)');
    case NotifyType.AUTHORIZATION_FAILED:
      return fail('AUTH_FAILED', 'the gateway authenticated us but does not authorize this connection (AUTHORIZATION_FAILED)', 'auth-failed');
    case NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD:
    case NotifyType.INVALID_SYNTAX:
    case NotifyType.INVALID_MAJOR_VERSION:
      return fail('PROTOCOL', `the gateway rejected our ${ex} request (${name})`);
    default:
      return fail('PROTOCOL', `the gateway answered our ${ex} request with ${name}`);
  }
}

/** 'IKE_AUTH request 1 [ IDi N(INITIAL_CONTACT) IDr AUTH CP SA TSi TSr ]' for debug logs. */
/** 'IKE_AUTH response 1': exchange, direction and message ID. */
export function exchangeKind(h: Pick<IkeHeader, 'exchange' | 'flags' | 'messageId'>): string {
  return `${exchangeName(h.exchange)} ${h.flags & 0x20 ? 'response' : 'request'} ${h.messageId}`;
}

export function describeMessage(h: Pick<IkeHeader, 'exchange' | 'flags' | 'messageId'>, payloads: readonly IkePayload[]): string {
  const kind = h.flags & 0x20 ? 'response' : 'request';
  return `${exchangeName(h.exchange)} ${kind} ${h.messageId} [ ${describePayloads(payloads)} ]`;
}
