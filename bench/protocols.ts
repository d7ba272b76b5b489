/**
 * What differs between the OpenVPN and the IPsec halves of the benchmark: how each client is started, where the
 * web host is, and where a lossy relay goes. Everything else (the scenarios, the numbers) is shared by run.ts.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pskClientConf, type HostName, type Lab } from '../test/lab/index.js';
import { startNative, startNativeIpsec, startOurs, type NativeProc, type OursClient } from './clients.js';

export type ProtocolKey = 'openvpn' | 'ipsec';
export const PROTOCOLS: readonly ProtocolKey[] = ['openvpn', 'ipsec'];

export interface Protocol {
  key: ProtocolKey;
  /** Heading of its table. */
  title: string;
  /** What our client runs and what the native client is, for the notes. */
  oursMode: string;
  nativeMode: string;
  /** A URL on the web host, as both clients reach it through their tunnels. */
  url(path: string): string;
  /** The web host's address behind this gateway (hold.ts's --target). */
  webHost: string;
  /** Our CLI's protocol arguments, for a client reaching the gateway directly or through a relay's port. */
  oursArgs(tag: string, relayPort?: number): Promise<string[]>;
  /** Our client; with `status`, also its --status endpoint (for the TCP counters). */
  ours(tag: string, relayPort?: number, nodeArgs?: string[], status?: boolean): Promise<OursClient>;
  native(tag: string, relayPort?: number): Promise<NativeProc>;
  /** The gateway's process (openvpn server, responder charon): its CPU time per GB tells whether it is the bottleneck. */
  gatewayPid(): number | undefined;
  /** Where relays for the lossy download run, and what they forward to. */
  relayHost: HostName;
  relayTarget: string;
}

export function openvpnProtocol(lab: Lab): Protocol {
  const s = lab.openvpn!;
  const oursArgs = async (tag: string, relayPort?: number): Promise<string[]> => {
    const profile = await s.clientProfile({ name: `${tag}.ovpn`, ...(relayPort ? { remote: { host: lab.addr.srv, port: relayPort } } : {}) });
    return ['openvpn', profile];
  };
  return {
    key: 'openvpn',
    title: 'OpenVPN: ours next to the stock openvpn client',
    oursMode: 'node dist/cli/main.js openvpn PROFILE --http-proxy 127.0.0.1:0 --socks-proxy off --log-level warn',
    nativeMode: 'openvpn 2.6 (kernel tun, kernel TCP)',
    url: (p) => lab.web.url(p),
    webHost: lab.web.host,
    oursArgs,
    ours: async (tag, relayPort, nodeArgs, status) => startOurs({ protocol: await oursArgs(tag, relayPort), nodeArgs, status }),
    native: (tag, relayPort) => startNative(lab, tag, relayPort),
    gatewayPid: () => s.pid,
    relayHost: 'srv',
    relayTarget: `${lab.addr.srv}:${s.port}`,
  };
}

/** The IKE and ESP proposals both IPsec clients use (the responder offers these among others). */
export const IPSEC_PROPOSALS = { ike: 'aes256gcm16-prfsha256-x25519', esp: 'aes256gcm16' };
/** strongSwan's own client connects as this identity, to a connection of its own on the same responder. */
const NATIVE_ID = 'native.lab';

/**
 * Starts the lab's strongSwan responder for the benchmark: its usual PSK connection for our client (identity
 * client.lab), plus one for strongSwan's client (native.lab) that is the same but for the identity. Both clients
 * are connected at once; with one identity, the second IKE_AUTH's INITIAL_CONTACT would make the responder
 * destroy the first client's IKE_SA and give its virtual IP away.
 */
export async function startIpsecResponder(lab: Lab): Promise<void> {
  const a = lab.addr;
  const ss = await lab.startStrongSwan({
    espProposals: IPSEC_PROPOSALS.esp,
    extraConnections: `  rw-native {
    version = 2
    local_addrs = ${a.ike}, ${a.ikeNatSide}
    proposals = ${IPSEC_PROPOSALS.ike}
    encap = yes
    pools = labpool
    local {
      auth = psk
      id = server.lab
    }
    remote {
      auth = psk
      id = ${NATIVE_ID}
    }
    children {
      net {
        local_ts = ${a.webIpsecNet}
        esp_proposals = ${IPSEC_PROPOSALS.esp}
      }
    }
  }`,
    extraSecrets: `  ike-native {
    id-1 = server.lab
    id-2 = ${NATIVE_ID}
    secret = "lab-psk-not-secret"
  }`,
  });
  if (ss.localId !== 'server.lab' || ss.psk !== 'lab-psk-not-secret') throw new Error('the bench expects the lab responder\'s default id and PSK');
}

export function ipsecProtocol(lab: Lab): Protocol {
  const ss = lab.strongswan!;
  const oursArgs = async (tag: string, relayPort?: number): Promise<string[]> => {
    const file = join(lab.dir, `${tag}.swanctl.conf`);
    await writeFile(file, pskClientConf(ss, { name: 'bench', remotePort: relayPort, proposals: IPSEC_PROPOSALS.ike, espProposals: IPSEC_PROPOSALS.esp }));
    return ['ipsec', file];
  };
  return {
    key: 'ipsec',
    title: "IPsec: ours next to strongSwan's own client",
    oursMode: 'node dist/cli/main.js ipsec SWANCTL.CONF --http-proxy 127.0.0.1:0 --socks-proxy off --log-level warn',
    nativeMode: 'strongSwan 5.9 charon (kernel-libipsec on a tun device, kernel TCP)',
    url: (p) => lab.web.ipsecUrl(p),
    webHost: lab.web.ipsecHost,
    oursArgs,
    ours: async (tag, relayPort, nodeArgs, status) => startOurs({ protocol: await oursArgs(tag, relayPort), nodeArgs, status }),
    native: (tag, relayPort) => startNativeIpsec(lab, tag, NATIVE_ID, relayPort),
    gatewayPid: () => ss.pid,
    relayHost: 'ike',
    relayTarget: `${ss.address}:4500`,
  };
}
