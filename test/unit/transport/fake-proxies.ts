/**
 * In-process stand-ins for an HTTP CONNECT proxy (Basic or Digest) and a SOCKS5 server (CONNECT and UDP
 * ASSOCIATE, RFC 1929 user/password), written from the RFCs independently of src/transport, for the
 * upstream-proxy tests. Everything binds 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';

export interface FakeProxy {
  port: number;
  /** Request heads received (HTTP) or commands (SOCKS5), for assertions. */
  log: string[];
  stop(): Promise<void>;
}

function serve(handler: (s: net.Socket) => void): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handler(s);
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () =>
      res({
        port: (server.address() as net.AddressInfo).port,
        stop: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    ),
  );
}

export interface HttpProxyOptions {
  /** Required credentials; without them any CONNECT is allowed. */
  user?: string;
  pass?: string;
  /** What to challenge with: 'basic', 'digest-md5', 'digest-sha256' or a raw Proxy-Authenticate list. */
  scheme?: 'basic' | 'digest-md5' | 'digest-sha256' | string[];
  /** Answer wrong credentials with 401 and WWW-Authenticate (as tinyproxy does) instead of 407. */
  wrongIs401?: boolean;
  /** Answer CONNECT with this status line instead (e.g. '403 Forbidden'). */
  refuse?: string;
  /** Bytes sent right after the 200 head, in the same write. */
  extra?: Buffer;
}

export async function fakeHttpProxy(o: HttpProxyOptions = {}): Promise<FakeProxy> {
  const log: string[] = [];
  const nonce = 'n0nce-' + Math.random().toString(36).slice(2);
  const realm = 'lab proxy';
  const challenge = (): string[] => {
    if (Array.isArray(o.scheme)) return o.scheme;
    if (o.scheme === 'digest-md5') return [`Digest realm="${realm}", nonce="${nonce}", qop="auth", algorithm=MD5, opaque="op1"`];
    if (o.scheme === 'digest-sha256') return [`Digest realm="${realm}", nonce="${nonce}", qop="auth,auth-int", algorithm=SHA-256`];
    return [`Basic realm="${realm}"`];
  };
  const authorized = (head: string, target: string): boolean => {
    if (o.user === undefined) return true;
    const m = /^proxy-authorization: *(\S+) +(.*)$/im.exec(head);
    if (!m) return false;
    if (m[1]!.toLowerCase() === 'basic') return Buffer.from(m[2]!, 'base64').toString() === `${o.user}:${o.pass}`;
    if (m[1]!.toLowerCase() !== 'digest') return false;
    const params: Record<string, string> = {};
    for (const pm of m[2]!.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) params[pm[1]!] = pm[2] ?? pm[3]!;
    const alg = (params.algorithm ?? 'MD5').toUpperCase() === 'SHA-256' ? 'sha256' : 'md5';
    const H = (s: string) => createHash(alg).update(s).digest('hex');
    if (params.nonce !== nonce || params.uri !== target || params.username !== o.user) return false;
    const ha1 = H(`${o.user}:${realm}:${o.pass}`);
    const ha2 = H(`CONNECT:${target}`);
    const want = params.qop ? H(`${ha1}:${nonce}:${params.nc}:${params.cnonce}:${params.qop}:${ha2}`) : H(`${ha1}:${nonce}:${ha2}`);
    return params.response === want;
  };
  const srv = await serve((s) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      const head = buf.slice(0, end);
      log.push(head);
      const target = /^CONNECT (\S+) HTTP\/1\.[01]$/m.exec(head)?.[1];
      if (!target) return void s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      if (o.refuse) return void s.end(`HTTP/1.1 ${o.refuse}\r\nContent-Length: 0\r\n\r\n`);
      if (!authorized(head, target)) {
        if (o.wrongIs401 && /^proxy-authorization:/im.test(head)) {
          return void s.end(`HTTP/1.0 401 Unauthorized\r\n${challenge().map((c) => `WWW-Authenticate: ${c}\r\n`).join('')}\r\n`);
        }
        return void s.end(`HTTP/1.1 407 Proxy Authentication Required\r\n${challenge().map((c) => `Proxy-Authenticate: ${c}\r\n`).join('')}Content-Length: 0\r\n\r\n`);
      }
      const [h, p] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
      const up = net.connect(p, h.replace(/^\[|\]$/g, ''), () => {
        s.write(Buffer.concat([Buffer.from('HTTP/1.1 200 Connection established\r\nProxy-Agent: fake\r\n\r\n'), o.extra ?? Buffer.alloc(0)]));
        const rest = Buffer.from(buf.slice(end + 4), 'latin1');
        if (rest.length) up.write(rest);
        s.pipe(up);
        up.pipe(s);
      });
      up.on('error', () => s.destroy());
      s.on('close', () => up.destroy());
    };
    s.on('data', onData);
  });
  return { port: srv.port, log, stop: srv.stop };
}

export interface SocksOptions {
  user?: string;
  pass?: string;
  /** Reply code for every request (default 0 = succeeded). */
  rep?: number;
  /** Answer UDP ASSOCIATE with 0.0.0.0 as the relay address (RFC 1928: use the server's address). */
  zeroRelay?: boolean;
}

/** SOCKS5 server: CONNECT and UDP ASSOCIATE (IPv4 and domain targets), optional RFC 1929 auth. */
export async function fakeSocks5(o: SocksOptions = {}): Promise<FakeProxy & { udpRelayed: number }> {
  const log: string[] = [];
  const state = { udpRelayed: 0 };
  const relays = new Set<dgram.Socket>();
  const srv = await serve((s) => {
    let buf = Buffer.alloc(0);
    let stage: 'greet' | 'auth' | 'req' | 'done' = 'greet';
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (stage === 'greet') {
          if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
          const methods = [...buf.subarray(2, 2 + buf[1]!)];
          buf = buf.subarray(2 + buf[1]!);
          const want = o.user !== undefined ? 2 : 0;
          if (!methods.includes(want)) return void s.end(Buffer.from([5, 0xff]));
          s.write(Buffer.from([5, want]));
          stage = want === 2 ? 'auth' : 'req';
        } else if (stage === 'auth') {
          if (buf.length < 2) return;
          const ul = buf[1]!;
          if (buf.length < 3 + ul) return;
          const pl = buf[2 + ul]!;
          if (buf.length < 3 + ul + pl) return;
          const u = buf.subarray(2, 2 + ul).toString();
          const p = buf.subarray(3 + ul, 3 + ul + pl).toString();
          buf = buf.subarray(3 + ul + pl);
          log.push(`auth ${u}`);
          if (u !== o.user || p !== o.pass) return void s.end(Buffer.from([1, 1]));
          s.write(Buffer.from([1, 0]));
          stage = 'req';
        } else if (stage === 'req') {
          if (buf.length < 5) return;
          const cmd = buf[1]!;
          const atyp = buf[3]!;
          const alen = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + buf[4]!;
          if (buf.length < 4 + alen + 2) return;
          const host = atyp === 1 ? [...buf.subarray(4, 8)].join('.') : atyp === 3 ? buf.subarray(5, 5 + buf[4]!).toString() : '::';
          const port = buf.readUInt16BE(4 + alen);
          buf = buf.subarray(4 + alen + 2);
          stage = 'done';
          s.off('data', onData);
          log.push(`${cmd === 1 ? 'CONNECT' : cmd === 3 ? 'UDP' : cmd} ${host}:${port}`);
          const reply = (rep: number, addr: number[], p: number) => Buffer.from([5, rep, 0, 1, ...addr, p >> 8, p & 0xff]);
          if (o.rep) return void s.end(reply(o.rep, [0, 0, 0, 0], 0));
          if (cmd === 1) {
            const up = net.connect(port, host === 'localhost' ? '127.0.0.1' : host, () => {
              s.write(reply(0, [127, 0, 0, 1], up.localPort!));
              if (buf.length) up.write(buf);
              s.pipe(up);
              up.pipe(s);
            });
            up.on('error', () => s.destroy());
            s.on('close', () => up.destroy());
          } else if (cmd === 3) {
            const relay = dgram.createSocket('udp4');
            relays.add(relay);
            let client: { address: string; port: number } | undefined;
            relay.on('message', (m, r) => {
              if (r.address === '127.0.0.1' && (client === undefined || r.port === client.port) && m[0] === 0 && m[1] === 0) {
                client = { address: r.address, port: r.port };
                const at = m[3]!;
                const off = at === 1 ? 8 : 5 + m[4]!;
                const dh = at === 1 ? [...m.subarray(4, 8)].join('.') : m.subarray(5, 5 + m[4]!).toString();
                const dp = m.readUInt16BE(off);
                state.udpRelayed++;
                relay.send(m.subarray(off + 2), dp, dh === 'localhost' ? '127.0.0.1' : dh);
              } else if (client) {
                const hdr = Buffer.from([0, 0, 0, 1, ...r.address.split('.').map(Number), r.port >> 8, r.port & 0xff]);
                relay.send(Buffer.concat([hdr, m]), client.port, client.address);
              }
            });
            relay.bind(0, '127.0.0.1', () => {
              const p = relay.address().port;
              s.write(reply(0, o.zeroRelay ? [0, 0, 0, 0] : [127, 0, 0, 1], p));
            });
            s.on('close', () => {
              if (relays.delete(relay)) relay.close();
            });
            s.resume();
          } else s.end(reply(7, [0, 0, 0, 0], 0));
          return;
        } else return;
      }
    };
    s.on('data', onData);
  });
  return {
    port: srv.port,
    log,
    get udpRelayed() {
      return state.udpRelayed;
    },
    stop: async () => {
      await srv.stop();
      for (const r of relays) r.close();
      relays.clear();
    },
  };
}
