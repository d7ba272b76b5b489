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
  /** Whether the protocol's flags can stand in for the config file (parseFlags then decides). */
  readonly configOptional?: boolean;
  /** Validates the protocol's flags against each other and the config file given, if any (VpnError USAGE on bad input). */
  parseFlags(values: Readonly<Record<string, unknown>>, configPath: string | undefined): P;
  /** Loads the config (undefined only if configOptional) and credentials: the backend the tunnel runs, and warnings to log. */
  prepare(configPath: string | undefined, flags: P, log: Logger): Promise<{ backend: VpnBackend<unknown>; warnings: string[] }>;
}
