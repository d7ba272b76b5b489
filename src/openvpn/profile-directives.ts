/**
 * How the profile parser treats directives it does not turn into profile fields (openvpn.md §6.2):
 * recognised-and-ignored (P), programs we never run (ignored with a warning), and directives that would
 * change what goes on the wire or need something we do not have (rejected with PROFILE_UNSUPPORTED).
 */

/** Options OpenVPN keeps per connection entry: allowed inside `<connection>` blocks. */
export const CONNECTION_DIRECTIVES: ReadonlySet<string> = new Set([
  'remote', 'proto', 'port', 'rport', 'lport', 'bind', 'nobind', 'local', 'float',
  'connect-retry', 'connect-retry-max', 'connect-timeout', 'server-poll-timeout',
  'explicit-exit-notify', 'key-direction', 'tls-auth', 'tls-crypt', 'tls-crypt-v2',
  'tun-mtu', 'tun-mtu-extra', 'tun-mtu-max', 'tun-max-mtu', 'link-mtu', 'mssfix', 'max-packet-size',
  'mtu-disc', 'fragment', 'http-proxy', 'http-proxy-option', 'http-proxy-retry', 'http-proxy-timeout',
  'socks-proxy',
]);

/** Directives whose argument may be an inline `<name>…</name>` block. */
export const INLINE_DIRECTIVES: ReadonlySet<string> = new Set([
  'ca', 'cert', 'key', 'extra-certs', 'dh', 'pkcs12', 'secret', 'tls-auth', 'tls-crypt', 'tls-crypt-v2',
  'auth-user-pass', 'http-proxy-user-pass', 'crl-verify', 'peer-fingerprint', 'auth-gen-token-secret',
  'verify-hash', 'connection',
]);

/** Directives that name a program or script to run: never run, warned about once. */
export const PROGRAM_DIRECTIVES: ReadonlySet<string> = new Set([
  'up', 'down', 'route-up', 'route-pre-down', 'ipchange', 'script-security', 'tls-verify',
  'auth-user-pass-verify', 'client-connect', 'client-disconnect', 'learn-address', 'plugin',
  'tls-crypt-v2-verify', 'iproute', 'dns-updown',
]);

/** Recognised directives with no effect on a userspace client (recorded in `profile.ignored`, no warning). */
export const IGNORED_DIRECTIVES: ReadonlySet<string> = new Set([
  // local socket / process / logging
  'lport', 'bind', 'nobind', 'float', 'local', 'persist-key', 'persist-tun', 'persist-remote-ip',
  'persist-local-ip', 'mute-replay-warnings', 'verb', 'mute', 'user', 'group', 'daemon', 'log', 'log-append',
  'status', 'status-version', 'writepid', 'sndbuf', 'rcvbuf', 'fast-io', 'txqueuelen', 'suppress-timestamps',
  'machine-readable-output', 'syslog', 'nice', 'chroot', 'cd', 'setcon', 'tmp-dir', 'echo', 'setenv-safe',
  'memstats', 'tcp-nodelay', 'socket-flags', 'mark', 'bind-dev', 'passtos', 'mtu-disc', 'mtu-test',
  'ping-timer-rem', 'single-session', 'tls-exit', 'remap-usr1', 'up-delay', 'up-restart', 'down-pre',
  'engine', 'providers', 'show-ciphers', 'show-digests', 'show-tls', 'show-engines', 'show-groups',
  'tcp-queue-limit', 'bcast-buffers', 'shaper', 'disable-occ', 'allow-recursive-routing',
  // routing / DNS on the local host (we have no host routes; pushed values are used by the session)
  'route', 'route-ipv6', 'route-gateway', 'route-ipv6-gateway', 'route-metric', 'route-delay',
  'route-method', 'route-noexec', 'ifconfig-noexec', 'ifconfig-nowarn', 'redirect-gateway',
  'redirect-private', 'dhcp-option', 'dns', 'block-outside-dns', 'register-dns', 'block-ipv6', 'ip-win32',
  'dhcp-renew', 'dhcp-release', 'dhcp-pre-release', 'tap-sleep', 'allow-pull-fqdn', 'client-nat',
  'ifconfig-ipv6', 'tun-ipv6', 'topology', 'dev-node', 'lladdr', 'windows-driver', 'disable-dco',
  // TLS/auth odds and ends that only matter for other setups
  'dh', 'ecdh-curve', 'tls-export-cert', 'x509-username-field', 'x509-track', 'keying-material-exporter',
  'auth-token-user', 'no-replay', 'opt-verify', 'remote-random-hostname', 'management-query-passwords',
  'management-hold', 'management-signal', 'management-forget-disconnect', 'management-up-down',
  'management-client', 'management-client-auth', 'management-log-cache', 'management-query-proxy',
  'management-query-remote', 'management', 'management-client-user', 'management-client-group',
  'socks-proxy-retry',
  'auth-gen-token-secret', 'preresolve', 'ip-remote-hint', 'mtu-dynamic', 'prng', 'ncp-disable',
]);

/** Options the server pushes; in a client config OpenVPN refuses them. We warn and ignore. */
export const PUSH_ONLY_DIRECTIVES: ReadonlySet<string> = new Set([
  'peer-id', 'auth-token', 'key-derivation', 'protocol-flags', 'push-continuation',
]);

export interface Unsupported {
  reason: string;
  advice?: string;
}

const SERVER: Unsupported = {
  reason: 'it is a server directive',
  advice: 'use the client profile your provider gives you',
};
const HW_KEY: Unsupported = {
  reason: 'keys held by a token, the OS store or an external signer cannot be used',
  advice: "export the certificate and key to files and use 'cert' and 'key' (or 'pkcs12')",
};

/** Directives rejected outright (argument-dependent ones such as `dev tap` are checked in the parser). */
export const UNSUPPORTED_DIRECTIVES: ReadonlyMap<string, Unsupported> = new Map<string, Unsupported>([
  ['fragment', { reason: 'it changes the packet format' }],
  ['tls-server', SERVER],
  ['server', SERVER],
  ['server-bridge', SERVER],
  ['server-ipv6', SERVER],
  ['push', SERVER],
  ['push-reset', SERVER],
  ['ifconfig-pool', SERVER],
  ['ifconfig-pool-persist', SERVER],
  ['client-config-dir', SERVER],
  ['client-to-client', SERVER],
  ['duplicate-cn', SERVER],
  ['ccd-exclusive', SERVER],
  ['capath', { reason: 'a directory of CA certificates cannot be used', advice: "put the CA certificates into 'ca'" }],
  ['pkcs11-providers', HW_KEY],
  ['pkcs11-id', HW_KEY],
  ['pkcs11-id-management', HW_KEY],
  ['cryptoapicert', HW_KEY],
  ['management-external-key', HW_KEY],
  ['management-external-cert', HW_KEY],
]);

/** Message for an unsupported directive, with file:line. */
export function unsupportedMessage(file: string, line: number, directive: string, u: Unsupported): string {
  const advice = u.advice ?? 'remove it or ask the server admin for a config without it';
  return `${file}:${line}: '${directive}' is not supported (${u.reason}); ${advice}`;
}
