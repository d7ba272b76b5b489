import { EventEmitter } from 'node:events';
import type { AddressInfo, Server } from 'node:net';

/**
 * Starts `server` listening on host:port; resolves with the bound address (port 0 = any free port), rejects
 * with the listen error (EADDRINUSE, EACCES …). Shared by every listener of the proxy layer.
 */
export function listenOn(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * What every listener of the proxy layer (HTTP proxy, SOCKS5, local forward, status endpoint) does the same
 * way: listen on its address and emit 'listening', report the bound address, track the sockets it hands
 * out, and on close stop accepting, destroy what is open and wait for the server to close.
 */
export abstract class ListeningServer extends EventEmitter {
  protected readonly sockets = new Set<{ destroy(): unknown }>();
  private addr: AddressInfo | undefined;

  /** The server to listen with, and where. */
  protected abstract listenTarget(): { server: Server; port: number; host: string };

  /** Start listening; resolves with the bound address (port 0 = any free port). */
  async listen(): Promise<AddressInfo> {
    const { server, port, host } = this.listenTarget();
    const addr = await listenOn(server, port, host);
    this.addr = addr;
    this.emit('listening', addr);
    return addr;
  }

  address(): AddressInfo | undefined {
    return this.addr;
  }

  /** Stop listening and close every connection this listener opened. */
  async close(): Promise<void> {
    const { server } = this.listenTarget();
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    this.closing();
    await closed;
  }

  /** Extra work of a subclass on close (after the sockets were destroyed, before waiting for the server). */
  protected closing(): void {}

  /** Keep `s` until it closes, so close() can destroy it. */
  protected track<S extends { destroy(): unknown; once(ev: 'close', f: () => void): unknown }>(s: S): S {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    return s;
  }
}
