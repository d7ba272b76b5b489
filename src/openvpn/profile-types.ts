/**
 * The typed result of parsing an OpenVPN client profile (.ovpn). Every field documents the directive it
 * comes from and OpenVPN 2.6's default. Times are in seconds, as in the config file.
 */
import type { KeyDirection, StaticKey, TlsCryptV2ClientKey } from './keyfile.js';

/**
 * - `tls-client`: TLS control channel (`client`, or `tls-client`); with `pull` the server pushes the tunnel
 *   configuration (the normal case).
 * - `static-key`: `secret` (pre-shared key, no TLS, no push; needs `ifconfig`).
 * - `p2p-plain`: neither TLS nor secret: unencrypted point-to-point (tests only; needs `ifconfig`).
 */
export type ProfileMode = 'tls-client' | 'static-key' | 'p2p-plain';

/** `any` = `udp`/`tcp` (IPv4 or IPv6 as the name resolves); `ipv4` = `udp4`/`tcp4`...; `ipv6` = `udp6`/`tcp6`... */
export type AddressFamily = 'any' | 'ipv4' | 'ipv6';

/** Control-channel protection for one connection (at most one of the three). */
export type TlsWrap =
  /** `tls-auth file [dir]` / `<tls-auth>` + `key-direction`: HMAC with the `auth` digest. */
  | { kind: 'tls-auth'; key: StaticKey; direction: KeyDirection; line: number }
  /** `tls-crypt`: AES-256-CTR + HMAC-SHA256, client always uses direction 1 (key-direction ignored). */
  | { kind: 'tls-crypt'; key: StaticKey; line: number }
  /** `tls-crypt-v2 file [force-cookie|allow-noncookie]` (the option only matters on servers). */
  | { kind: 'tls-crypt-v2'; key: TlsCryptV2ClientKey; line: number };

/** `mssfix [n] [mtu|fixed]`; value 0 = disabled. Default 1492 with the `mtu` flag (value is the on-wire packet size). */
export interface MssFix {
  value: number;
  /** `mtu`: value is the total encapsulated UDP/TCP packet size; `fixed`: value is the IP packet size; undefined = classic. */
  flag?: 'mtu' | 'fixed';
  /** false when the default applies. */
  explicit: boolean;
}

/**
 * Options that OpenVPN keeps per connection entry: set globally (defaults) or inside `<connection>` blocks.
 * Each `remotes[i].connection` holds the fully resolved values for that remote.
 */
export interface ConnectionOptions {
  /** `tls-auth` / `tls-crypt` / `tls-crypt-v2` (a global one applies to connections that set none). */
  tlsWrap?: TlsWrap;
  /** `tun-mtu n`, default 1500. */
  tunMtu: number;
  /** `tun-mtu-extra n` (parsed, only affects tap; no effect for us). */
  tunMtuExtra?: number;
  /** `tun-mtu-max n` (2.6; also accepted as `tun-max-mtu`), default 1600: announced as IV_MTU. */
  tunMtuMax: number;
  /** `link-mtu n` (parsed, deprecated; informational). */
  linkMtu?: number;
  /** `mssfix`: see MssFix. */
  mssfix: MssFix;
  /** `max-packet-size n` (2.6): caps the on-wire packet size. */
  maxPacketSize?: number;
  /** `explicit-exit-notify [n]`: 0 = off (default); without an argument 1. Number of EXIT notifications to send on shutdown (UDP). */
  explicitExitNotify: number;
  /** `connect-retry n [max]`: wait n seconds before retrying (default 1), backing off to max (default 300). */
  connectRetry: { seconds: number; maxSeconds: number };
  /** `connect-timeout n` = `server-poll-timeout n`: give up on this remote after n s (default 120). */
  connectTimeout: number;
  /** `http-proxy` or `socks-proxy`: reach this remote through a proxy. */
  proxy?: ProfileProxy;
}

/**
 * `http-proxy HOST PORT [authfile|auto|auto-nct] [none|basic|digest]` (with `http-proxy-option`,
 * `http-proxy-timeout`, `<http-proxy-user-pass>`) or `socks-proxy HOST [PORT] [authfile]`.
 */
export interface ProfileProxy {
  type: 'http' | 'socks5';
  host: string;
  port: number;
  /** Line of the http-proxy / socks-proxy directive. */
  line: number;
  /**
   * HTTP: `basic` (an auth file or inline block without a method: OpenVPN's default), the given method,
   * `auto`/`auto-nct` (answer the proxy's challenge), or `auto` when no auth argument is given (a 407 is
   * then answered only with credentials from the environment or flags). SOCKS5: always `auto`.
   */
  auth: 'none' | 'basic' | 'digest' | 'auto' | 'auto-nct';
  /** From the auth file or `<http-proxy-user-pass>`; otherwise the environment / flags give them. */
  credentials?: { username: string; password?: string; source: 'file' | 'inline'; path?: string };
  /** The profile asks for credentials (an auth file, `stdin`, `auto`, `auto-nct`, an inline block). */
  wantsCredentials: boolean;
  /** `http-proxy-option VERSION 1.0|1.1` (default 1.0). */
  httpVersion?: '1.0' | '1.1';
  /** `http-proxy-option AGENT text`. */
  userAgent?: string;
  /** `http-proxy-option CUSTOM-HEADER name [value]`, in order. */
  headers: Array<[string, string]>;
  /** `http-proxy-timeout n` (seconds; OpenVPN's default 5). */
  timeout?: number;
}

/** One server to try, in order (`remote` lines or `<connection>` blocks). */
export interface ProfileRemote {
  /** Hostname or IP literal. */
  host: string;
  /** `remote host port`, else `port`/`rport`, default 1194. */
  port: number;
  /** `udp` (default) or `tcp` (`tcp`, `tcp-client`, `tcp4`, `tcp6`, `tcp4-client`, ...). */
  proto: 'udp' | 'tcp';
  /** From the `4`/`6` suffix of the proto name. */
  family: AddressFamily;
  /** Line of the `remote` directive. */
  line: number;
  /** Per-connection settings in effect for this remote. */
  connection: ConnectionOptions;
}

/** `comp-lzo [yes|no|adaptive]` or `compress [algo]` (framing, §4.8). */
export type CompressionSetting =
  /** comp-lzo: 0xFA/LZO framing; `no` = framing only. Bare `comp-lzo` = `adaptive`. */
  | { kind: 'comp-lzo'; mode: 'yes' | 'no' | 'adaptive' }
  /** compress: bare `compress` = `stub` (swap framing, no algorithm). */
  | { kind: 'compress'; algo: 'stub' | 'stub-v2' | 'lzo' | 'lz4' | 'lz4-v2' | 'migrate' };

/** One data cipher from `data-ciphers`; `?NAME` marks it optional (skip silently if unsupported). */
export interface DataCipher {
  name: string;
  optional: boolean;
}

/** `auth-user-pass [file]` or `<auth-user-pass>`. */
export interface AuthUserPass {
  /** `inline`: from the block; `file`: read from `path`; `prompt`: ask the user (no argument). */
  source: 'inline' | 'file' | 'prompt';
  /** Resolved path for `file`. */
  path?: string;
  /** First line of the file/block. */
  username?: string;
  /** Second line; undefined when only the username is given (then prompt for the password). */
  password?: string;
  line: number;
}

/** `static-challenge "text" echo [scrv1|concat]`: send the password as SCRV1:b64(pass):b64(response). */
export interface StaticChallenge {
  text: string;
  /** Show the user's response while typing. */
  echo: boolean;
  /** 2.7 third argument; default `scrv1`. `concat`: password and response concatenated. */
  format: 'scrv1' | 'concat';
}

/** `pull-filter accept|ignore|reject "prefix"`: first matching rule wins (prefix match after leading spaces). */
export interface PullFilterRule {
  action: 'accept' | 'ignore' | 'reject';
  prefix: string;
}

/** `verify-x509-name name [subject|name|name-prefix]` (default type `subject` = the whole DN, e.g. `C=DE, CN=server`). */
export interface VerifyX509Name {
  name: string;
  type: 'subject' | 'name' | 'name-prefix';
}

export type TlsVersion = '1.0' | '1.1' | '1.2' | '1.3';

export interface OpenVpnProfile {
  /** Where the profile came from (opts.path), for messages. */
  source: string;
  mode: ProfileMode;
  /** `pull` / `client`: accept pushed options (true for a normal client). */
  pull: boolean;
  /** `dev` name (default `tun`). */
  dev: string;
  /** Resolved `dev-type` (only `tun` or `null` are accepted). */
  devType: 'tun' | 'null';
  /** Servers in the order to try (remote-random applied by the connector, not here). */
  remotes: ProfileRemote[];
  /** `remote-random`: shuffle `remotes` before trying. */
  remoteRandom: boolean;
  /** `resolv-retry n|infinite`, default infinite. */
  resolvRetry: number | 'infinite';
  /** `connect-retry-max n`: how many times to cycle through the remotes (undefined = unlimited). */
  connectRetryMax?: number;

  // ---- TLS credentials and verification ----
  /** `ca` PEM (file or inline). */
  ca?: string;
  /** `cert` PEM. */
  cert?: string;
  /** `key` PEM (maybe encrypted; see askpass). */
  key?: string;
  /** `extra-certs` PEM: intermediate certificates sent with ours. */
  extraCerts?: string;
  /** `pkcs12` DER (file, or base64 inline): usable as Node's `pfx`. */
  pkcs12?: Uint8Array;
  /** `askpass [file]`: private key passphrase (first line of the file); `prompt` when no file. */
  askpass?: { source: 'file' | 'prompt'; path?: string; passphrase?: string };
  /** `remote-cert-tls server|client`: require keyUsage + EKU serverAuth (server). */
  remoteCertTls?: 'server' | 'client';
  /** `verify-x509-name`. */
  verifyX509Name?: VerifyX509Name;
  /** `ns-cert-type server|client` (legacy Netscape cert type). */
  nsCertType?: 'server' | 'client';
  /** `remote-cert-ku [hex ...]`: required keyUsage values (empty array = "any of the usual"). */
  remoteCertKu?: number[];
  /** `remote-cert-eku oid|name`. */
  remoteCertEku?: string;
  /** `peer-fingerprint` SHA-256 fingerprints (lower-case colon hex), file-less and inline forms. */
  peerFingerprints?: string[];
  /** `crl-verify file` PEM CRL. */
  crlVerify?: string;
  /** `verify-hash hash [algo]`: fingerprint of the peer's issuing CA (parsed; algo default SHA1). */
  verifyHash?: { hashes: string[]; algo: string };
  /** `tls-version-min v [or-highest]`, default 1.2. */
  tlsVersionMin: TlsVersion;
  tlsVersionMinOrHighest: boolean;
  /** `tls-version-max v`. */
  tlsVersionMax?: TlsVersion;
  /** `tls-cipher` (OpenSSL TLS ≤1.2 cipher list, maps to Node `ciphers`). */
  tlsCipher?: string;
  /** `tls-ciphersuites` (TLS 1.3 suites). */
  tlsCiphersuites?: string;
  /** `tls-groups` (maps to Node `ecdhCurve`). */
  tlsGroups?: string;
  /** `tls-cert-profile legacy|preferred|suiteb|insecure`. */
  tlsCertProfile?: string;

  // ---- control channel protection (global default; per-remote value in remotes[i].connection.tlsWrap) ----
  /** `key-direction 0|1` as given globally (used by tls-auth and secret). */
  keyDirection: KeyDirection;

  // ---- static key mode ----
  /** `secret file [dir]` / `<secret>`: key and direction (mode static-key). */
  secret?: { key: StaticKey; direction: KeyDirection; line: number };
  /** `ifconfig local remote` (static-key / p2p-plain modes only). */
  ifconfig?: { local: string; remote: string };

  // ---- data channel ----
  /** `auth digest`, default `SHA1` (upper-cased; `none` stays lower-case). Used for tls-auth HMAC and CBC data HMAC. */
  auth: string;
  /** `cipher` as given (upper-cased), undefined if absent. OCC hint / fallback only in TLS mode; the cipher in static mode (default BF-CBC). */
  cipher?: string;
  /** `data-ciphers`/`ncp-ciphers`, default AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305. */
  dataCiphers: DataCipher[];
  /** true when `data-ciphers` was given explicitly. */
  dataCiphersExplicit: boolean;
  /** `data-ciphers-fallback`: cipher for servers that do not negotiate (≤ 2.3). */
  dataCiphersFallback?: string;
  /** `comp-lzo` / `compress` (last one wins). undefined = no compression framing. */
  compression?: CompressionSetting;
  /** `allow-compression no|asym|yes` (2.6 default `no`; we always behave as `asym`: decompress, never compress). */
  allowCompression?: 'no' | 'asym' | 'yes';
  /** `replay-window n [t]`, default 64 / 15 s. */
  replayWindow: { size: number; seconds: number };
  /**
   * vpnproxy switch, not an OpenVPN directive: announce and use TLS keying-material export for the data
   * keys when the server agrees (IV_PROTO bit 3). Always true from the parser; callers may turn it off.
   */
  tlsEkm: boolean;

  // ---- authentication ----
  authUserPass?: AuthUserPass;
  /** `auth-nocache`: forget the password after use (needs re-prompt on renegotiation without a token). */
  authNocache: boolean;
  /** `auth-retry none|nointeract|interact`, default none (AUTH_FAILED ends the session). */
  authRetry: 'none' | 'nointeract' | 'interact';
  staticChallenge?: StaticChallenge;

  // ---- timers ----
  /** `reneg-sec n`, default 3600 (0 = off). */
  renegSec: number;
  /** `reneg-bytes n` (undefined = off). */
  renegBytes?: number;
  /** `reneg-pkts n` (undefined = off). */
  renegPkts?: number;
  /** `hand-window n`, default 60. */
  handWindow: number;
  /** `tran-window n`, default 3600. */
  tranWindow: number;
  /** `tls-timeout n`, default 2 (control-channel retransmit). */
  tlsTimeout: number;
  /** `ping n` (or `keepalive n m`): send a ping after n s of send silence. undefined = not configured (server usually pushes it). */
  ping?: number;
  /** `ping-restart n` (or `keepalive n m`). */
  pingRestart?: number;
  /** `ping-exit n`. */
  pingExit?: number;
  /** `inactive n [bytes]`. */
  inactive?: { seconds: number; bytes: number };
  /** `session-timeout n`. */
  sessionTimeout?: number;

  // ---- pull handling ----
  /** `pull-filter` rules in order. */
  pullFilters: PullFilterRule[];
  /** `route-nopull`: ignore pushed routes (keep everything else). */
  routeNopull: boolean;

  // ---- peer info ----
  /** `setenv name value` pairs (IV_GUI_VER, IV_SSO, UV_* are meant for peer-info). */
  setenv: Record<string, string>;
  /** `push-peer-info`: send the extended IV_/UV_ set. */
  pushPeerInfo: boolean;
  /** `compat-mode x.y.z`. */
  compatMode?: string;

  /** Directives that had no effect (recognised-but-irrelevant, programs, push-only, unknown), for debug logs. */
  ignored: { name: string; line: number }[];
}

export interface ProfileWarning {
  /** The profile path (or `<profile>`). */
  file: string;
  line: number;
  directive?: string;
  /** Human text, starting with `line N:`. */
  message: string;
}

export interface ParseProfileOptions {
  /** Path of the profile; used in messages and to resolve relative file references. */
  path?: string;
  /** Reads a referenced file (absolute path) as UTF-8; throw ENOENT-style errors when missing. Without it, file references are PROFILE_FILE errors. */
  readFile?: (absPath: string) => string;
  /** Like readFile but bytes (only `pkcs12 file` needs it; loadProfile supplies it). Without it a pkcs12 file reference is a PROFILE_FILE error. */
  readBinaryFile?: (absPath: string) => Uint8Array;
}

export interface ParsedProfile {
  profile: OpenVpnProfile;
  warnings: ProfileWarning[];
}
