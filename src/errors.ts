/**
 * Typed errors with stable codes. Every error a user can see is a VpnError with a code from this list;
 * the CLI maps codes to exit codes (see exitCodeFor).
 */
export type ErrorCode =
  // usage / configuration (exit 2)
  | 'USAGE'
  | 'PROFILE_SYNTAX'
  | 'PROFILE_UNSUPPORTED'
  | 'PROFILE_FILE'
  /** A cipher, digest, PRF or group name/ID the crypto registry does not have (any protocol). */
  | 'ALGORITHM_UNSUPPORTED'
  // transport
  | 'CONNECT_TIMEOUT'
  | 'CONN_REFUSED'
  | 'HOST_UNREACHABLE'
  | 'DNS_NXDOMAIN'
  | 'DNS_NODATA'
  | 'DNS_TIMEOUT'
  | 'DNS_ERROR'
  | 'TRANSPORT_CLOSED'
  | 'TRANSPORT_ERROR'
  /** The upstream (HTTP or SOCKS5) proxy wants credentials we do not have, or refused ours. */
  | 'PROXY_AUTH_FAILED'
  /** The upstream proxy refused to connect us to the server (HTTP 403/502..., a SOCKS5 reply code). */
  | 'PROXY_REFUSED'
  /** The upstream proxy answered with bytes that are not its protocol. */
  | 'PROXY_PROTOCOL'
  // OpenVPN / TLS / session (exit 1)
  | 'TLS_VERIFY'
  /** IKEv2: the gateway's certificate chain does not lead to a configured CA. */
  | 'CERT_UNTRUSTED'
  /** IKEv2: a certificate of the gateway's chain is expired or not yet valid. */
  | 'CERT_EXPIRED'
  /** IKEv2: the gateway's certificate does not vouch for its identity (IDr) or the configured remote id. */
  | 'CERT_IDENTITY'
  | 'TLS_HANDSHAKE'
  | 'HANDSHAKE_TIMEOUT'
  | 'AUTH_FAILED'
  | 'NO_SHARED_CIPHER'
  | 'SERVER_HALT'
  | 'PUSH_TIMEOUT'
  | 'PING_TIMEOUT'
  /** A key reached its hard lifetime and cannot be renewed (manual IPsec SAs). */
  | 'SA_EXPIRED'
  /** The IPsec gateway refused the traffic selectors of the CHILD_SA (IKEv2 TS_UNACCEPTABLE and kin). */
  | 'TS_UNACCEPTABLE'
  | 'PROTOCOL'
  // wire decoding (never fatal to a session; counted and dropped)
  | 'WIRE'
  // anything else
  | 'INTERNAL';

export class VpnError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'VpnError';
  }
}

/** A malformed packet or field: thrown by codecs in src/wire, caught and counted by the layers above. */
export class WireError extends VpnError {
  readonly field: string;
  readonly offset: number;
  constructor(message: string, field: string, offset: number) {
    super('WIRE', `${message} (field ${field} at offset ${offset})`);
    this.name = 'WireError';
    this.field = field;
    this.offset = offset;
  }
}

/** Exit codes scripts can rely on: 0 clean stop, 1 VPN failure, 2 usage/config error. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof VpnError) {
    switch (err.code) {
      case 'USAGE':
      case 'PROFILE_SYNTAX':
      case 'PROFILE_UNSUPPORTED':
      case 'PROFILE_FILE':
      case 'ALGORITHM_UNSUPPORTED':
        return 2;
      default:
        return 1;
    }
  }
  return 1;
}
