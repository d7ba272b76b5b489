/**
 * Prerequisites of the lab: root and the Debian tools. Outside CI a test without them is skipped with a one-line
 * reason; with CI=true it fails with that reason (startLab throws LabPrereqError).
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './exec.js';

/** Thrown by startLab when the machine cannot run the lab; the message is one line. */
export class LabPrereqError extends LabError {
  override name = 'LabPrereqError';
}

export type LabFeature = 'openvpn' | 'strongswan' | 'iperf3' | 'curl' | 'dns' | 'esp' | 'proxies';

const BINARIES: Record<LabFeature | 'base', string[]> = {
  base: ['ip', 'openssl', 'sysctl', 'unshare', 'mount'],
  openvpn: ['openvpn'],
  strongswan: ['/usr/lib/ipsec/charon', 'swanctl'],
  iperf3: ['iperf3'],
  curl: ['curl'],
  dns: ['dnsmasq'],
  // The scapy ESP gateway (esp-gateway.py) and tshark's ESP decryption (tshark-esp.ts).
  esp: ['/usr/bin/python3', 'tshark', 'dumpcap'],
  // Upstream proxies between our client and the server (tinyproxy, squid, dante) and nft to block the direct path.
  proxies: ['tinyproxy', 'squid', '/usr/lib/squid/digest_file_auth', 'danted', 'nft'],
};

/** Python modules (Debian packages) a feature needs, as files that must exist. */
const MODULES: Partial<Record<LabFeature, Array<[pkg: string, file: string]>>> = {
  esp: [
    ['python3-scapy', '/usr/lib/python3/dist-packages/scapy/layers/ipsec.py'],
    ['python3-cryptography', '/usr/lib/python3/dist-packages/cryptography/hazmat/primitives/ciphers/aead.py'],
  ],
};

function onPath(bin: string): boolean {
  const dirs = bin.includes('/') ? [''] : (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  for (const d of dirs) {
    try {
      accessSync(d ? join(d, bin) : bin, constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

export interface LabPrereqs {
  ok: boolean;
  /** One line: what is missing and how to get it (undefined when ok). */
  reason?: string;
  /**
   * The value for node:test's `skip` option: the reason when the lab cannot run and CI is not set, else
   * undefined (in CI the test runs and fails with the reason).
   */
  skip?: string;
}

/**
 * Checks root, /dev/net/tun and the binaries for `features` (default: all). Cheap and synchronous, so it can
 * be used in `test(name, { skip: labPrereqs().skip }, ...)`.
 */
export function labPrereqs(features: readonly LabFeature[] = ['openvpn', 'strongswan', 'iperf3', 'curl', 'dns', 'esp']): LabPrereqs {
  let reason: string | undefined;
  if (process.platform !== 'linux') reason = 'the lab needs Linux network namespaces';
  else if (typeof process.getuid === 'function' && process.getuid() !== 0) reason = 'the lab needs root (network namespaces)';
  else {
    try {
      accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
    } catch {
      reason = '/dev/net/tun is missing';
    }
  }
  if (!reason) {
    const missing = ['base' as const, ...features].flatMap((f) => BINARIES[f]).filter((b) => !onPath(b));
    for (const [pkg, file] of features.flatMap((f) => MODULES[f] ?? [])) {
      try {
        accessSync(file, constants.R_OK);
      } catch {
        missing.push(pkg);
      }
    }
    if (missing.length) reason = `missing ${missing.join(', ')} (run: bash scripts/setup.sh)`;
  }
  if (!reason) return { ok: true };
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  return { ok: false, reason, skip: ci ? undefined : reason };
}

/** Throws LabPrereqError(reason) if the lab cannot run. */
export function assertLabPrereqs(features?: readonly LabFeature[]): void {
  const p = labPrereqs(features);
  if (!p.ok) throw new LabPrereqError(`lab prerequisites: ${p.reason}`);
}
