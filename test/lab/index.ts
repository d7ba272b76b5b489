/**
 * vpnproxy's test lab: real OpenVPN 2.6 and strongSwan 5.9 peers in network namespaces, a scapy ESP-in-UDP
 * gateway with manual SAs, a web host behind them, the stock OpenVPN client as a baseline, a throwaway PKI, a
 * UDP impairment relay, and tshark as an independent ESP decryptor. Needs root; see
 * labPrereqs(). Start with `startLab()` (lab.ts), or by hand with `npm run lab -- up`.
 */
export { startLab, withLab, appendToError, Lab, type LabOptions, type WebHost, type RelayProcess } from './lab.js';
export {
  OpenVpnServer,
  SERVER_LOG,
  type OpenVpnServerOptions,
  type ClientProfileOptions,
  type UserPass,
} from './openvpn.js';
export { NativeClient, type NativeClientOptions, type CurlResult } from './native.js';
export { StrongSwanResponder, pskClientConf, type StrongSwanOptions, type PskClientConf } from './strongswan.js';
export { StrongSwanClient, type StrongSwanClientOptions } from './strongswan-client.js';
export {
  EspGateway,
  ESP_SUITES,
  ESP_SUITE_NAMES,
  ESP_GATEWAY_SCRIPT,
  ESP_CLIENT_CHECK_SCRIPT,
  SYSTEM_PYTHON,
  systemPythonEnv,
  type EspSuite,
  type EspSuiteInfo,
  type EspGatewayOptions,
  type EspGatewayCounters,
  type EspGatewayEvent,
  type EspSaKeys,
  type EspSaSpec,
} from './esp-gateway.js';
export {
  Capture,
  captureOn,
  dumpcapArgs,
  espSaRecord,
  espDecryptArgs,
  tsharkCanDecrypt,
  tsharkEspFields,
  espInnerPackets,
  tsharkFollowTcp,
  type CaptureOptions,
  type EspInnerPacket,
  type FollowedTcp,
  type TsharkFieldsOptions,
} from './tshark-esp.js';
export {
  ImpairRelay,
  seededRandom,
  parseRelayArgs,
  type ImpairConfig,
  type RelayOptions,
  type RelayCounters,
  type DirectionCounters,
} from './impair.js';
export { createChainPki, createPki, type ChainPki, type LabPki, type CertKey } from './pki.js';
export { detBytes, detChunks, detSha256, DEFAULT_SEED } from './detbytes.js';
export { startWebHost } from './webhost.js';
export { labPrereqs, assertLabPrereqs, LabPrereqError, type LabPrereqs, type LabFeature } from './prereqs.js';
export { sweepStale, listRuns, teardownRunSync, nsPids, runDir, LAB_ROOT, type RunStatus } from './state.js';
export { labAddresses, nsNames, HOSTS, type HostName, type LabAddresses } from './topology.js';
export { LabError, Daemon, run, waitFor, pidAlive, type RunResult, type RunOptions } from './exec.js';
