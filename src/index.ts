export { VpnError, WireError, type ErrorCode } from './errors.js';
export type { Link, LinkConfig } from './link/link.js';
export { VERSION } from './version.js';
