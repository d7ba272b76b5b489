// The library inside a running process: `node bench/library-start.mjs --url URL openvpn PROFILE | ipsec SWANCTL.CONF`.
// vpnproxy (dist/index.js) and undici are loaded first; the clock starts at connect() and stops at the first
// byte of a fetch through vpn.dispatcher. Prints one JSON line {"ms", "status"}. Part of `npm run bench`.
import { performance } from 'node:perf_hooks';
import { fetch } from 'undici';
import { connect } from '../dist/index.js';

const argv = process.argv.slice(2);
const url = argv[argv.indexOf('--url') + 1];
const [protocol, file] = argv.filter((a, i) => a !== '--url' && argv[i - 1] !== '--url');
if (!url || !file || !['openvpn', 'ipsec'].includes(protocol)) {
  process.stderr.write('usage: library-start.mjs --url URL (openvpn PROFILE | ipsec SWANCTL.CONF)\n');
  process.exit(2);
}
const t0 = performance.now();
const vpn = await connect(protocol === 'openvpn' ? { openvpn: { profile: file } } : { ipsec: { config: file } });
let status = 0;
let ms = NaN;
try {
  // fetch() resolves when the response head arrives: the first byte.
  const res = await fetch(url, { dispatcher: vpn.dispatcher });
  ms = performance.now() - t0;
  status = res.status;
  await res.arrayBuffer();
} finally {
  await vpn.close();
}
process.stdout.write(`${JSON.stringify({ ms, status })}\n`);
