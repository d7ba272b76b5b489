/**
 * Two-factor and web sign-in against the lab's real OpenVPN 2.6 server (issue 17, second half):
 * - static-challenge: the server's auth-user-pass-verify script decodes SCRV1 and checks a fixed code; the right
 *   code connects (curl through our proxy), a wrong one is AUTH_FAILED once and exit 1, never a reconnect loop;
 * - CRV1: the server's management interface (management-client-auth) denies the first attempt with a CRV1
 *   challenge; --otp-command answers it and the next connection, with CRV1::state::response, is let in;
 * - peer-fingerprint without any CA on either side; a wrong fingerprint is TLS_VERIFY;
 * - web sign-in: client-pending-auth with a WEB_AUTH URL; the library emits the URL and, once the test (the
 *   identity provider's stand-in) approves with client-auth-nt, the tunnel comes up; the CLI prints it, /status
 *   shows it, and without approval the wait ends at the server's timeout with a clear error.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect } from '../../src/library.js';
import { appendToError, labPrereqs, startLab, type Lab, type OpenVpnServer } from '../lab/index.js';
import { curl, startCli, type CliProcess } from './cli-helpers.js';

const pre = labPrereqs(['openvpn', 'curl']);

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** One management-interface client that stays connected and answers >CLIENT:CONNECT / REAUTH. */
class ManagementDriver {
  private sock: Socket | undefined;
  private buf = '';
  private current: { kind: string; cid: string; kid: string; env: Record<string, string> } | undefined;
  readonly seen: { kind: string; cid: string; kid: string; env: Record<string, string> }[] = [];
  /** >CLIENT:CR_RESPONSE,CID,KID,base64 (the answer to a CR_TEXT challenge). */
  onCrResponse: ((cid: string, kid: string, response: string) => void) | undefined;

  constructor(
    private readonly path: string,
    private readonly onClient: (c: { kind: string; cid: string; kid: string; env: Record<string, string> }) => string | undefined,
  ) {}

  async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = createConnection(this.path);
      this.sock = s;
      s.setEncoding('utf8');
      s.once('connect', () => resolve());
      s.once('error', reject);
      s.on('data', (d: string) => this.onData(d));
    });
  }

  send(cmd: string): void {
    this.sock?.write(`${cmd}\n`);
  }

  private onData(d: string): void {
    this.buf += d;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) return;
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      const head = /^>CLIENT:(CONNECT|REAUTH),(\d+),(\d+)/.exec(line);
      if (head) {
        this.current = { kind: head[1]!, cid: head[2]!, kid: head[3]!, env: {} };
        continue;
      }
      if (line === '>CLIENT:ENV,END' && this.current) {
        const c = this.current;
        this.current = undefined;
        this.seen.push(c);
        const answer = c.kind === 'REAUTH' ? `client-auth-nt ${c.cid} ${c.kid}` : this.onClient(c);
        if (answer) this.send(answer);
        continue;
      }
      const cr = /^>CLIENT:CR_RESPONSE,(\d+),(\d+),(.*)$/.exec(line);
      if (cr) {
        this.onCrResponse?.(cr[1]!, cr[2]!, Buffer.from(cr[3]!, 'base64').toString('utf8'));
        continue;
      }
      const env = /^>CLIENT:ENV,([^=]*)=(.*)$/.exec(line);
      if (env && this.current) this.current.env[env[1]!] = env[2]!;
    }
  }

  close(): void {
    this.sock?.end('quit\n');
    this.sock?.destroy();
  }
}

const lastLine = (s: string): string => s.trim().split('\n').at(-1) ?? '';

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

describe('OpenVPN two-factor and web sign-in against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  const clis: CliProcess[] = [];
  const cli = (profile: string, args: string[] = [], env?: NodeJS.ProcessEnv): CliProcess => {
    const c = startCli(profile, args, env);
    clis.push(c);
    return c;
  };

  before(async () => {
    lab = await startLab({ iperf: false });
  });
  after(async () => {
    for (const c of clis) await c.stop().catch(() => undefined);
    await lab?.stop();
  });

  /** curl through the CLI's HTTP proxy to the web host, which only the tunnel reaches. */
  async function healthzThrough(c: CliProcess): Promise<void> {
    const ready = await c.ready(60_000);
    const r = await curl(['-x', `http://${ready.http!.host}:${ready.http!.port}`, lab.web.url('/healthz')]);
    assert.equal(r.code, 0, `curl: ${r.stderr}\n--- CLI ---\n${c.stderr.slice(-2000)}`);
    assert.equal(r.stdout.toString(), 'ok\n');
  }

  test('static-challenge: the verify script decodes SCRV1; the right code connects, a wrong one is AUTH_FAILED once (exit 1)', async (t) => {
    const dir = lab.dir;
    const attempts = join(dir, 'scrv1-attempts.log');
    const script = join(dir, 'verify-scrv1.sh');
    // via-file: $1 holds "username\npassword\n"; the password is SCRV1:b64(password):b64(response).
    await writeFile(
      script,
      [
        '#!/bin/sh',
        'u=$(sed -n 1p "$1"); p=$(sed -n 2p "$1")',
        `echo "$u $p" >> ${attempts}`,
        'case "$p" in SCRV1:*:*) ;; *) exit 1 ;; esac',
        'pw=$(echo "$p" | cut -d: -f2 | base64 -d); code=$(echo "$p" | cut -d: -f3 | base64 -d)',
        '[ "$u" = alice ] && [ "$pw" = "s3cret" ] && [ "$code" = "424242" ] && exit 0',
        'exit 1',
        '',
      ].join('\n'),
    );
    await chmod(script, 0o755);
    await writeFile(attempts, '');
    const server = await lab.startOpenVpn({ extra: ['script-security 2', `auth-user-pass-verify ${script} via-file`] });
    try {
      const profile = await server.clientProfile({
        authUserPass: { username: 'alice', password: 's3cret' },
        extra: ['static-challenge "Enter the code from your authenticator" 1'],
      });
      // The right code, from VPNPROXY_OTP.
      const good = cli(profile, [], { VPNPROXY_OTP: '424242' });
      try {
        await healthzThrough(good);
      } catch (e) {
        appendToError(e, server.log().slice(-3000));
        throw e;
      }
      await good.stop();
      const okLines = (await readFile(attempts, 'utf8')).trim().split('\n');
      assert.equal(okLines.at(-1), `alice SCRV1:${b64('s3cret')}:${b64('424242')}`);

      // A wrong code with --otp: AUTH_FAILED, exit 1, and the script ran exactly once for it.
      await writeFile(attempts, '');
      const bad = cli(profile, ['--otp', '000000']);
      const exit = await bad.waitExit(90_000);
      assert.equal(exit.code, 1, bad.stderr.slice(-2000));
      assert.match(bad.stderr, /AUTH_FAILED/);
      t.diagnostic(`wrong code: ${lastLine(bad.stderr)}`);
      const badLines = (await readFile(attempts, 'utf8')).trim().split('\n');
      assert.deepEqual(badLines, [`alice SCRV1:${b64('s3cret')}:${b64('000000')}`], 'one attempt, no reconnect loop');

      // No way to answer (stdin is not a terminal): a usage error that says how to give the code.
      const none = cli(profile, []);
      const ne = await none.waitExit(30_000);
      assert.equal(ne.code, 2, none.stderr);
      assert.match(none.stderr, /static-challenge .*--otp CODE.*VPNPROXY_OTP.*--otp-command/);
      t.diagnostic(`no code: ${lastLine(none.stderr)}`);
    } finally {
      await server.stop();
    }
  });

  test('CRV1: the server challenges through its management interface; --otp-command answers; the tunnel comes up', async () => {
    let connects = 0;
    let driver: ManagementDriver | undefined;
    const server = await lab.startOpenVpn({ extra: ['management-client-auth'] });
    try {
      driver = new ManagementDriver(server.managementSocket, (c) => {
        connects++;
        if (c.env.password === 'pw1') {
          return `client-deny ${c.cid} ${c.kid} "second factor needed" "CRV1:R,E:st8cafe:${b64('alice')}:Enter the code we sent you"`;
        }
        if (c.env.username === 'alice' && c.env.password === 'CRV1::st8cafe::654321') return `client-auth-nt ${c.cid} ${c.kid}`;
        return `client-deny ${c.cid} ${c.kid} "wrong answer"`;
      });
      await driver.open();
      const profile = await server.clientProfile({ authUserPass: { username: 'alice', password: 'pw1' } });
      const otpLog = join(server.ctx.dir, 'otp-command.log');
      const c = cli(profile, ['--otp-command', `echo "$VPNPROXY_CHALLENGE_KIND:$VPNPROXY_CHALLENGE" >> ${otpLog}; echo 654321`]);
      try {
        await healthzThrough(c);
      } catch (e) {
        appendToError(e, `management saw: ${JSON.stringify(driver.seen.map((s) => ({ ...s, env: { username: s.env.username, password: s.env.password } })))}\n${server.log().slice(-3000)}`);
        throw e;
      }
      assert.equal(connects, 2, 'the first connection was challenged, the second answered it');
      assert.equal((await readFile(otpLog, 'utf8')).trim(), 'crv1:Enter the code we sent you');
      assert.match(c.stderr, /the server asks a challenge: Enter the code we sent you/);
      await c.stop();
    } finally {
      driver?.close();
      await server.stop();
    }
  });

  test('CRV1 with the library: the otp callback gets the challenge text', async () => {
    let driver: ManagementDriver | undefined;
    const server = await lab.startOpenVpn({ extra: ['management-client-auth'] });
    try {
      driver = new ManagementDriver(server.managementSocket, (c) => {
        if (c.env.password === 'pw2') return `client-deny ${c.cid} ${c.kid} "2fa" "CRV1:R:s2:${b64('bob')}:PIN please"`;
        if (c.env.username === 'bob' && c.env.password === 'CRV1::s2::9999') return `client-auth-nt ${c.cid} ${c.kid}`;
        return `client-deny ${c.cid} ${c.kid} "wrong answer"`;
      });
      await driver.open();
      const profile = await server.clientProfile({ authUserPass: { username: 'bob', password: 'pw2' } });
      const asked: { kind: string; text: string; echo: boolean }[] = [];
      const vpn = await connect({
        openvpn: {
          profile,
          otp: async (p) => {
            asked.push(p);
            return '9999';
          },
        },
        timeoutMs: 60_000,
      });
      try {
        assert.deepEqual(asked, [{ kind: 'crv1', text: 'PIN please', echo: false }]);
        const addrs = await vpn.lookup(lab.web.name);
        assert.ok(addrs.length > 0);
      } finally {
        await vpn.close();
      }
    } finally {
      driver?.close();
      await server.stop();
    }
  });

  test('CR_TEXT during pending authentication: --otp answers with CR_RESPONSE and the server lets us in', async () => {
    let driver: ManagementDriver | undefined;
    const server = await lab.startOpenVpn({ extra: ['management-client-auth'] });
    try {
      const answers: string[] = [];
      driver = new ManagementDriver(server.managementSocket, (c) => `client-pending-auth ${c.cid} ${c.kid} "CR_TEXT:R,E:Enter your PIN" 60`);
      driver.onCrResponse = (cid, kid, response) => {
        answers.push(response);
        driver!.send(response === '2468' ? `client-auth-nt ${cid} ${kid}` : `client-deny ${cid} ${kid} "wrong PIN"`);
      };
      await driver.open();
      const profile = await server.clientProfile({ authUserPass: { username: 'erin', password: 'pw' } });
      const c = cli(profile, ['--otp', '2468']);
      try {
        await healthzThrough(c);
      } catch (e) {
        appendToError(e, server.log().slice(-3000));
        throw e;
      }
      assert.deepEqual(answers, ['2468']);
      assert.match(c.stderr, /the server asks: Enter your PIN/);
      await c.stop();
    } finally {
      driver?.close();
      await server.stop();
    }
  });

  test('peer-fingerprint without any CA on either side connects; a wrong fingerprint is TLS_VERIFY', async (t) => {
    const pki = await lab.pki();
    const fp = async (file: string) => new X509Certificate(await readFile(file)).fingerprint256;
    const clientFp = await fp(pki.client.ec.cert);
    const serverFp = await fp(pki.server.ec.cert);
    const server = await lab.startOpenVpn({ peerFingerprints: [clientFp] });
    try {
      assert.doesNotMatch(await readFile(server.configFile, 'utf8'), /^ca /m);
      const omit = ['ca', 'remote-cert-tls', 'verify-x509-name'];
      const profile = await server.clientProfile({ omit, extra: ['<peer-fingerprint>', serverFp, '</peer-fingerprint>'] });
      assert.doesNotMatch(await readFile(profile, 'utf8'), /<ca>|^ca /m);
      const c = cli(profile);
      try {
        await healthzThrough(c);
      } catch (e) {
        appendToError(e, server.log().slice(-3000));
        throw e;
      }
      await c.stop();

      const wrongFp = serverFp.replace(/^../, serverFp.startsWith('00') ? '11' : '00');
      const wrong = await server.clientProfile({ omit, extra: [`peer-fingerprint ${wrongFp}`] });
      const w = cli(wrong);
      const exit = await w.waitExit(60_000);
      assert.equal(exit.code, 1, w.stderr.slice(-2000));
      assert.match(w.stderr, /fingerprint .* is not in peer-fingerprint/);
      t.diagnostic(`wrong fingerprint: ${lastLine(w.stderr)}`);
    } finally {
      await server.stop();
    }
  });

  test('web sign-in: the library emits the URL; approval through the management interface brings the tunnel up', async () => {
    let driver: ManagementDriver | undefined;
    const server = await lab.startOpenVpn({ extra: ['management-client-auth'] });
    const url = `http://${lab.web.host}/signin?session=lab1`;
    try {
      let pending: { cid: string; kid: string } | undefined;
      driver = new ManagementDriver(server.managementSocket, (c) => {
        pending = { cid: c.cid, kid: c.kid };
        return `client-pending-auth ${c.cid} ${c.kid} "WEB_AUTH::${url}" 60`;
      });
      await driver.open();
      const profile = await server.clientProfile({ authUserPass: { username: 'carol', password: 'sso' } });
      const events: { url?: string; timeout?: number }[] = [];
      const vpn = await connect({
        openvpn: {
          profile,
          onAuthPending: (e) => {
            events.push({ url: e.url, timeout: e.timeout });
            // The identity provider's stand-in approves once the user "opened" the page.
            setTimeout(() => pending && driver!.send(`client-auth-nt ${pending.cid} ${pending.kid}`), 500);
          },
        },
        timeoutMs: 90_000,
      });
      try {
        assert.deepEqual(events, [{ url, timeout: 60 }]);
        assert.ok((await vpn.lookup(lab.web.name)).length > 0);
        assert.equal(vpn.tunnel.status().extra, undefined, 'no pending state once up');
      } finally {
        await vpn.close();
      }
      const seen = driver.seen.find((s) => s.kind === 'CONNECT');
      assert.match(seen?.env.IV_SSO ?? '', /webauth/, 'we announce IV_SSO with webauth');
    } finally {
      driver?.close();
      await server.stop();
    }
  });

  test('web sign-in with the CLI: the URL is printed, /status shows it pending, and no approval ends at the server timeout (exit 1)', async (t) => {
    let driver: ManagementDriver | undefined;
    const server = await lab.startOpenVpn({ extra: ['management-client-auth'] });
    const url = `http://${lab.web.host}/signin?session=lab2`;
    try {
      driver = new ManagementDriver(server.managementSocket, (c) => `client-pending-auth ${c.cid} ${c.kid} "WEB_AUTH::${url}" 10`);
      await driver.open();
      const profile = await server.clientProfile({ authUserPass: { username: 'dave', password: 'sso' } });
      const statusPort = await freePort();
      const c = cli(profile, ['--status', `127.0.0.1:${statusPort}`]);
      await c.waitForLog(new RegExp(`sign in to the VPN at ${url.replace(/[?.]/g, '\\$&')} \\(the server waits 10 s\\)`), 60_000);
      const st = await curl([`http://127.0.0.1:${statusPort}/status`]);
      assert.equal(st.code, 0, st.stderr);
      const doc = JSON.parse(st.stdout.toString()) as { tunnel: { state: string }; extra?: Record<string, unknown> };
      assert.equal(doc.tunnel.state, 'connecting');
      assert.equal(doc.extra?.authPending, true);
      assert.equal(doc.extra?.authPendingUrl, url);
      assert.equal(doc.extra?.authPendingTimeout, 10);
      const exit = await c.waitExit(90_000);
      assert.equal(exit.code, 1, c.stderr.slice(-2000));
      assert.match(c.stderr, /sign-in was not completed/);
      t.diagnostic(`no approval: ${lastLine(c.stderr)}`);
      assert.equal(driver.seen.filter((s) => s.kind === 'CONNECT').length, 1, 'no reconnect after the sign-in timed out');
    } finally {
      driver?.close();
      await server.stop();
    }
  });
});
