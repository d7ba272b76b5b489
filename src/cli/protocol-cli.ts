/**
 * What a protocol adds to the command line: `vpnproxy NAME CONFIG [options]` with its few own flags and
 * help lines, and how to turn its config file and flags into a backend. Everything else (listeners,
 * routing, status, DNS, logging, pcap, ping, timeouts) is the common part of the CLI, parsed once.
 */
import type { VpnBackend } from '../session/types.js';
import type { Logger } from '../util/log.js';

export type FlagSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

export interface ProtocolCli<P = unknown> {
  /** The command word: 'openvpn', 'ipsec'. */
  readonly name: string;
  /** How the usage line names the config argument, e.g. 'PROFILE.ovpn'. */
  readonly configName: string;
  /** One line for the usage list. */
  readonly summary: string;
  /** The protocol's own flags (node:util parseArgs format). */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Help lines for those flags, already indented like the common ones. */
  readonly help: string;
  /** Validates the protocol's flags (VpnError USAGE on bad input). */
  parseFlags(values: Readonly<Record<string, unknown>>): P;
  /** Loads the config and credentials: the backend the tunnel runs, and warnings to log. */
  prepare(configPath: string, flags: P, log: Logger): Promise<{ backend: VpnBackend<unknown>; warnings: string[] }>;
}
