#!/usr/bin/env node
/**
 * Fetch one URL through an OpenVPN tunnel with Node's own fetch: no tun device, no root, nothing else on the
 * machine goes through the VPN.
 *
 *   npm run build
 *   node examples/fetch-through-vpn.mjs PROFILE.ovpn URL [--user NAME --pass SECRET] [--ca CA.pem]
 *
 * Prints the status, the size and the sha256 of the body (and the body itself with --print).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'vpnproxy';

const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const username = flag('--user') ?? process.env.VPNPROXY_USERNAME;
const password = flag('--pass') ?? process.env.VPNPROXY_PASSWORD;
const ca = flag('--ca');
const print = args.includes('--print') && args.splice(args.indexOf('--print'), 1);
const [profile, url] = args;
if (!profile || !url) {
  console.error('usage: node examples/fetch-through-vpn.mjs PROFILE.ovpn URL [--user NAME --pass SECRET] [--ca CA.pem] [--print]');
  process.exit(2);
}

const vpn = await connect({
  openvpn: { profile, username, password },
  tls: ca ? { ca: readFileSync(ca) } : undefined,
});
vpn.on('reconnecting', (e) => console.error(`VPN down (${e.reason}), reconnecting…`));
console.error(`VPN up: our address ${vpn.address}, cipher ${vpn.info?.cipher}`);
try {
  const res = await fetch(url, { dispatcher: vpn.dispatcher });
  const body = Buffer.from(await res.arrayBuffer());
  console.log(`HTTP ${res.status} ${body.length} bytes sha256 ${createHash('sha256').update(body).digest('hex')}`);
  if (print) process.stdout.write(body);
} finally {
  await vpn.close();
}
