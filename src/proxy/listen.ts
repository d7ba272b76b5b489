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
