/**
 * IKEv2 numbers (IANA "Internet Key Exchange Version 2 (IKEv2) Parameters"): RFC 7296 §3 unless noted, RFC 7383
 * for fragmentation, RFC 7427 for digital signatures, RFC 8598 for INTERNAL_DNS_DOMAIN. Each table is a plain
 * `as const` object; the *Name functions turn a number into its name for logs ("UNKNOWN(n)" when not listed).
 */

/** Exchange types, RFC 7296 §3.1. */
export const IkeExchange = {
  IKE_SA_INIT: 34,
  IKE_AUTH: 35,
  CREATE_CHILD_SA: 36,
  INFORMATIONAL: 37,
} as const;

/** Header flags, RFC 7296 §3.1 (the other bits are reserved: sent 0, ignored). */
export const IkeFlags = {
  /** Sent by the original initiator of the IKE SA. */
  INITIATOR: 0x08,
  /** "Higher version supported": never set by an RFC 7296 implementation. */
  VERSION: 0x10,
  /** The message is a response. */
  RESPONSE: 0x20,
} as const;

/** Payload types, RFC 7296 §3.2; SKF from RFC 7383 §2.5. 0 ends a chain. */
export const PayloadType = {
  NONE: 0,
  SA: 33,
  KE: 34,
  IDi: 35,
  IDr: 36,
  CERT: 37,
  CERTREQ: 38,
  AUTH: 39,
  NONCE: 40,
  NOTIFY: 41,
  DELETE: 42,
  VENDOR: 43,
  TSi: 44,
  TSr: 45,
  SK: 46,
  CP: 47,
  EAP: 48,
  SKF: 53,
} as const;

/** Transform types, RFC 7296 §3.3.2 (type 4 is "Key Exchange Method" since RFC 9370). */
export const TransformType = {
  ENCR: 1,
  PRF: 2,
  INTEG: 3,
  DH: 4,
  ESN: 5,
} as const;

/** Encryption algorithm transform IDs, RFC 7296 §3.3.2, RFC 5282 (GCM/CCM), RFC 7634 (ChaCha20-Poly1305). */
export const EncrId = {
  DES3: 3,
  NULL: 11,
  AES_CBC: 12,
  AES_CTR: 13,
  AES_CCM_8: 14,
  AES_CCM_12: 15,
  AES_CCM_16: 16,
  AES_GCM_8: 18,
  AES_GCM_12: 19,
  AES_GCM_16: 20,
  NULL_AUTH_AES_GMAC: 21,
  CHACHA20_POLY1305: 28,
} as const;

/** Pseudorandom function transform IDs, RFC 7296 §3.3.2, RFC 4868. */
export const PrfId = {
  HMAC_MD5: 1,
  HMAC_SHA1: 2,
  AES128_XCBC: 4,
  HMAC_SHA2_256: 5,
  HMAC_SHA2_384: 6,
  HMAC_SHA2_512: 7,
  AES128_CMAC: 8,
} as const;

/** Integrity algorithm transform IDs, RFC 7296 §3.3.2, RFC 4868. */
export const IntegId = {
  NONE: 0,
  HMAC_MD5_96: 1,
  HMAC_SHA1_96: 2,
  AES_XCBC_96: 5,
  AES_CMAC_96: 8,
  HMAC_SHA2_256_128: 12,
  HMAC_SHA2_384_192: 13,
  HMAC_SHA2_512_256: 14,
} as const;

/** Diffie-Hellman group transform IDs, RFC 7296 §3.3.2, RFC 3526, RFC 5903, RFC 8031. */
export const DhGroup = {
  NONE: 0,
  MODP_1024: 2,
  MODP_1536: 5,
  MODP_2048: 14,
  MODP_3072: 15,
  MODP_4096: 16,
  MODP_6144: 17,
  MODP_8192: 18,
  ECP_256: 19,
  ECP_384: 20,
  ECP_521: 21,
  CURVE25519: 31,
  CURVE448: 32,
} as const;

/** Extended Sequence Numbers transform IDs, RFC 7296 §3.3.2. */
export const EsnId = {
  NO_ESN: 0,
  ESN: 1,
} as const;

/** Transform attribute types, RFC 7296 §3.3.5 (Key Length is TV, i.e. sent with the AF bit set). */
export const TransformAttr = {
  KEY_LENGTH: 14,
} as const;

/** Security protocol IDs, RFC 7296 §3.3.1. */
export const ProtocolId = {
  IKE: 1,
  AH: 2,
  ESP: 3,
} as const;

/** Identification types, RFC 7296 §3.5. */
export const IdType = {
  IPV4_ADDR: 1,
  FQDN: 2,
  RFC822_ADDR: 3,
  IPV6_ADDR: 5,
  DER_ASN1_DN: 9,
  DER_ASN1_GN: 10,
  KEY_ID: 11,
} as const;

/** Authentication methods, RFC 7296 §3.8, RFC 4754 (ECDSA), RFC 7619 (NULL), RFC 7427 (digital signature). */
export const AuthMethod = {
  RSA_SIG: 1,
  SHARED_KEY_MIC: 2,
  DSS_SIG: 3,
  ECDSA_SHA256_P256: 9,
  ECDSA_SHA384_P384: 10,
  ECDSA_SHA512_P521: 11,
  NULL: 13,
  DIGITAL_SIGNATURE: 14,
} as const;

/**
 * Notify message types, RFC 7296 §3.10.1: errors below 16384, status types from 16384. 40/41 are from RFC 4555
 * (MOBIKE), 45..47 from later IANA registrations; the status types past RFC 7296's are from the RFCs named.
 */
export const NotifyType = {
  UNSUPPORTED_CRITICAL_PAYLOAD: 1,
  INVALID_IKE_SPI: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_SYNTAX: 7,
  INVALID_MESSAGE_ID: 9,
  INVALID_SPI: 11,
  NO_PROPOSAL_CHOSEN: 14,
  INVALID_KE_PAYLOAD: 17,
  AUTHENTICATION_FAILED: 24,
  SINGLE_PAIR_REQUIRED: 34,
  NO_ADDITIONAL_SAS: 35,
  INTERNAL_ADDRESS_FAILURE: 36,
  FAILED_CP_REQUIRED: 37,
  TS_UNACCEPTABLE: 38,
  INVALID_SELECTORS: 39,
  UNACCEPTABLE_ADDRESSES: 40,
  UNEXPECTED_NAT_DETECTED: 41,
  USE_ASSIGNED_HoA: 42,
  TEMPORARY_FAILURE: 43,
  CHILD_SA_NOT_FOUND: 44,
  INVALID_GROUP_ID: 45,
  AUTHORIZATION_FAILED: 46,
  STATE_NOT_FOUND: 47,

  INITIAL_CONTACT: 16384,
  SET_WINDOW_SIZE: 16385,
  ADDITIONAL_TS_POSSIBLE: 16386,
  IPCOMP_SUPPORTED: 16387,
  NAT_DETECTION_SOURCE_IP: 16388,
  NAT_DETECTION_DESTINATION_IP: 16389,
  COOKIE: 16390,
  USE_TRANSPORT_MODE: 16391,
  HTTP_CERT_LOOKUP_SUPPORTED: 16392,
  REKEY_SA: 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED: 16394,
  NON_FIRST_FRAGMENTS_ALSO: 16395,
  /** RFC 4555. */
  MOBIKE_SUPPORTED: 16396,
  /** RFC 4555. */
  NO_ADDITIONAL_ADDRESSES: 16399,
  /** RFC 4739. */
  MULTIPLE_AUTH_SUPPORTED: 16404,
  /** RFC 5685. */
  REDIRECT_SUPPORTED: 16406,
  /** RFC 5998. */
  EAP_ONLY_AUTHENTICATION: 16417,
  /** RFC 6023. */
  CHILDLESS_IKEV2_SUPPORTED: 16418,
  /** RFC 6311. */
  IKEV2_MESSAGE_ID_SYNC_SUPPORTED: 16420,
  /** RFC 7383 §2.3. */
  IKEV2_FRAGMENTATION_SUPPORTED: 16430,
  /** RFC 7427 §4. */
  SIGNATURE_HASH_ALGORITHMS: 16431,
} as const;

/** First status notify type: anything below is an error (RFC 7296 §3.10.1). */
export const NOTIFY_STATUS_MIN = 16384;

/** Configuration payload types, RFC 7296 §3.15. */
export const CpType = {
  REQUEST: 1,
  REPLY: 2,
  SET: 3,
  ACK: 4,
} as const;

/** Configuration attribute types, RFC 7296 §3.15.1; INTERNAL_DNS_DOMAIN from RFC 8598 §4. */
export const CpAttr = {
  INTERNAL_IP4_ADDRESS: 1,
  INTERNAL_IP4_NETMASK: 2,
  INTERNAL_IP4_DNS: 3,
  INTERNAL_IP4_NBNS: 4,
  INTERNAL_IP4_DHCP: 6,
  APPLICATION_VERSION: 7,
  INTERNAL_IP6_ADDRESS: 8,
  INTERNAL_IP6_DNS: 10,
  INTERNAL_IP6_DHCP: 12,
  INTERNAL_IP4_SUBNET: 13,
  SUPPORTED_ATTRIBUTES: 14,
  INTERNAL_IP6_SUBNET: 15,
  INTERNAL_DNS_DOMAIN: 25,
} as const;

/** Traffic selector types, RFC 7296 §3.13.1. */
export const TsType = {
  IPV4_ADDR_RANGE: 7,
  IPV6_ADDR_RANGE: 8,
} as const;

/** Certificate encodings, RFC 7296 §3.6. */
export const CertEncoding = {
  PKCS7_X509: 1,
  X509_SIGNATURE: 4,
  CRL: 7,
  HASH_URL_X509: 12,
  HASH_URL_X509_BUNDLE: 13,
} as const;

/** Hash algorithm IDs of SIGNATURE_HASH_ALGORITHMS, RFC 7427 §7 and RFC 8420 (IDENTITY). */
export const HashAlgorithm = {
  SHA1: 1,
  SHA2_256: 2,
  SHA2_384: 3,
  SHA2_512: 4,
  IDENTITY: 5,
} as const;

// ---------------------------------------------------------------- names for logs

type Table = Readonly<Record<string, number>>;

function reverse(t: Table): Map<number, string> {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(t)) if (!m.has(v)) m.set(v, k);
  return m;
}

function namer(t: Table): (n: number) => string {
  const m = reverse(t);
  return (n) => m.get(n) ?? `UNKNOWN(${n})`;
}

export const exchangeName = namer(IkeExchange);
export const payloadName = namer(PayloadType);
export const transformTypeName = namer(TransformType);
export const protocolName = namer(ProtocolId);
export const idTypeName = namer(IdType);
export const authMethodName = namer(AuthMethod);
export const notifyName = namer(NotifyType);
export const cpTypeName = namer(CpType);
export const cpAttrName = namer(CpAttr);
export const tsTypeName = namer(TsType);
export const certEncodingName = namer(CertEncoding);

const transformIdNamers: Record<number, (n: number) => string> = {
  [TransformType.ENCR]: namer(EncrId),
  [TransformType.PRF]: namer(PrfId),
  [TransformType.INTEG]: namer(IntegId),
  [TransformType.DH]: namer(DhGroup),
  [TransformType.ESN]: namer(EsnId),
};

/** Name of a transform ID within its transform type, e.g. transformIdName(1, 12) = "AES_CBC". */
export function transformIdName(type: number, id: number): string {
  const f = transformIdNamers[type];
  return f ? f(id) : `UNKNOWN(${id})`;
}

/** The flags byte as text for logs, e.g. "I", "R", "I|R", "" (reserved bits shown as hex). */
export function flagsName(flags: number): string {
  const parts: string[] = [];
  if (flags & IkeFlags.INITIATOR) parts.push('I');
  if (flags & IkeFlags.VERSION) parts.push('V');
  if (flags & IkeFlags.RESPONSE) parts.push('R');
  const rest = flags & ~(IkeFlags.INITIATOR | IkeFlags.VERSION | IkeFlags.RESPONSE) & 0xff;
  if (rest) parts.push(`0x${rest.toString(16)}`);
  return parts.join('|');
}
