#!/usr/bin/env node
import { VERSION } from '../version.js';

const HELP = `vpnproxy ${VERSION} — a userspace VPN client exposed as local proxies

Usage:
  vpnproxy openvpn PROFILE.ovpn [options]
  vpnproxy --help | --version
`;

function main(argv: string[]): number {
  if (argv.includes('--version')) {
    process.stdout.write(VERSION + '\n');
    return 0;
  }
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  process.stderr.write(`vpnproxy: unknown command "${argv[0]}" (try --help)\n`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
