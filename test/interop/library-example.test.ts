/**
 * The README's library example (examples/fetch-through-vpn.mjs, importing the built package as 'vpnproxy')
 * runs against the lab: HTTP and HTTPS (with the lab CA) through the real OpenVPN server, byte-exact.
 * Needs `npm run build` (done by `npm test`'s set-up); skipped without dist/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { detSha256, labPrereqs, startLab, type Lab } from '../lab/index.js';

const pre = labPrereqs();
const root = fileURLToPath(new URL('../../', import.meta.url));
const built = existsSync(`${root}dist/library.js`);

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${root}examples/fetch-through-vpn.mjs`, ...args], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('library example: examples/fetch-through-vpn.mjs', { skip: pre.skip || (!built && 'dist/ not built (npm run build)'), timeout: 120_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test('fetches over HTTP and HTTPS through the VPN, byte-exact', async () => {
    const profile = await lab.clientProfile();
    const n = 2_000_000;
    const r = await run([profile, lab.web.url(`/bytes/${n}`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /VPN up: our address 10\.8\.0\.\d+/);
    assert.equal(r.stdout.trim(), `HTTP 200 ${n} bytes sha256 ${detSha256(n)}`);
    const s = await run([profile, `https://${lab.web.name}/bytes/${n}`, '--ca', lab.web.ca]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout.trim(), `HTTP 200 ${n} bytes sha256 ${detSha256(n)}`);
  });

  test('without arguments it prints its usage and exits 2', async () => {
    const r = await run([]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage:/);
  });
});
