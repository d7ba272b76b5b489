/** The proxy front-ends and their seams, for the CLI and the library. */
export * from './dialer.js';
export * from './router.js';
export * from './http-proxy.js';
export * from './socks5.js';
export * from './forward.js';
export * from './status.js';
export * from './metrics.js';
export * from './auth.js';
export * from './access.js';
export { relay, logConnection, type RelayResult, type RelayOptions, type ConnectionLogFields } from './relay.js';
