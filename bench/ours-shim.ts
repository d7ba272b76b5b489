/**
 * TEMPORARY stand-in for `vpnproxy openvpn PROFILE --http-proxy H:P --socks-proxy off` until the CLI has
 * --http-proxy: VpnTunnel + HttpProxy in one process, printing the CLI's ready line on stderr
 * (`vpnproxy: ready: http-proxy 127.0.0.1:PORT`). Delete once the CLI lands.
 *
 *   node --import tsx bench/ours-shim.ts PROFILE [--http-proxy 127.0.0.1:0]
 */
import { loadProfile } from '../src/openvpn/profile.js';
import { HttpProxy } from '../src/proxy/http-proxy.js';
import { fixedRoute } from '../src/proxy/router.js';
import { VpnTunnel } from '../src/tunnel.js';
import { Logger } from '../src/util/log.js';

const profilePath = process.argv[2];
if (!profilePath) {
  process.stderr.write('usage: ours-shim.ts PROFILE [--http-proxy HOST:PORT]\n');
  process.exit(2);
}
const hp = process.argv.indexOf('--http-proxy');
const listen = hp > 0 ? process.argv[hp + 1] ?? '127.0.0.1:0' : '127.0.0.1:0';
const colon = listen.lastIndexOf(':');
const log = new Logger('warn', 'text');
const { profile } = await loadProfile(profilePath);
const tunnel = new VpnTunnel({ profile, logger: log });
await tunnel.start();
const proxy = new HttpProxy({
  routing: fixedRoute(tunnel.dialer, 'vpn', () => tunnel.state === 'up'),
  host: listen.slice(0, colon),
  port: Number(listen.slice(colon + 1)),
  logger: log,
});
const a = await proxy.listen();
process.stderr.write(`vpnproxy: ready: http-proxy ${a.address}:${a.port}\n`);
let closing = false;
const bye = (): void => {
  if (closing) process.exit(130);
  closing = true;
  setTimeout(() => process.exit(0), 2000).unref();
  void proxy
    .close()
    .then(() => tunnel.close())
    .finally(() => process.exit(0));
};
process.on('SIGTERM', bye);
process.on('SIGINT', bye);
