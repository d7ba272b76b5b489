/**
 * Headless Chromium (Debian's chromium) through the CLI's --http-proxy and a real OpenVPN server: it loads the
 * lab web host's /page (HTML + CSS + a script + three SVG images + a PNG) and takes a screenshot. The screenshot
 * is decoded and must show what only a fully loaded page shows: the stylesheet's yellow background, each
 * image's colour, and the purple box that the script styles. Every request went through the proxy (info log).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToError, labPrereqs, startLab, type Lab } from '../lab/index.js';
import { startCli, type CliProcess, type Ready } from './cli-helpers.js';
import { countColors, decodePng, distinctColors } from './png.js';

const lab = labPrereqs(['openvpn', 'curl', 'dns']);
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const ci = process.env.CI === 'true' || process.env.CI === '1';
const skip = lab.skip ?? (CHROMIUM || ci ? undefined : 'chromium is not installed (run: bash scripts/setup.sh)');

function runChromium(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(CHROMIUM ?? 'chromium', args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('headless Chromium through the HTTP proxy', { skip, timeout: 300_000 }, () => {
  let l: Lab;
  let cli: CliProcess;
  let ready: Ready;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-chromium-'));
    l = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
    cli = startCli(await l.clientProfile(), ['--socks-proxy', 'off']);
    try {
      ready = await cli.ready();
    } catch (e) {
      appendToError(e, l.logs());
      throw e;
    }
  });
  after(async () => {
    await cli?.stop();
    await l?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('loads a page with sub-resources and the screenshot shows it rendered', async () => {
    assert.ok(CHROMIUM, 'chromium is installed');
    const shot = join(tmp, 'page.png');
    const since = cli.stderr.length;
    const r = await runChromium([
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${join(tmp, 'profile')}`,
      `--proxy-server=http://127.0.0.1:${ready.http!.port}`, `--screenshot=${shot}`, '--window-size=800,600',
      l.web.url('/page'),
    ], 90_000);
    assert.ok(existsSync(shot), `no screenshot (chromium exit ${r.code}):\n${r.out.slice(-2000)}`);
    assert.ok((await stat(shot)).size > 5000, 'a non-trivial PNG');
    const img = decodePng(await readFile(shot));
    assert.equal(img.width, 800);
    assert.ok(distinctColors(img) > 20, 'not a blank image');
    const counts = countColors(img, {
      background: [0xf4, 0xe0, 0x4d], // style.css
      red: [0xd3, 0x2f, 0x2f], // red.svg
      green: [0x38, 0x8e, 0x3c], // green.svg
      blue: [0x19, 0x76, 0xd2], // blue.svg
      orange: [255, 140, 0], // stripes.png
      teal: [0, 128, 128], // stripes.png
      purple: [0x7b, 0x1f, 0xa2], // app.js sets class "ran"
    });
    for (const [k, n] of Object.entries(counts)) assert.ok(n > 500, `${k}: ${n} pixels (${JSON.stringify(counts)})`);
    assert.ok(counts.background! > 800 * 600 * 0.5, 'mostly the stylesheet background');
    // The page and its six sub-resources each went through the proxy and the tunnel.
    const web = l.web.host.replace(/\./g, '\\.');
    const fetched = cli.stderr.slice(since).split('\n').filter((x) => new RegExp(`\\[http-proxy\\].*dest=${web}:80 route=vpn method=GET status=200`).test(x));
    assert.ok(fetched.length >= 7, `${fetched.length} proxied page requests:\n${cli.stderr.slice(since).slice(-3000)}`);
  });
});
