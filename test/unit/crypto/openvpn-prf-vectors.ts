/** OpenVPN TLS1-PRF vectors computed with the OpenSSL 3.0 CLI (shared by the PRF and keys tests). */
export const hex = (s: string) => Buffer.from(s, 'hex');
export const seq = (start: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));

// Computed independently with the OpenSSL 3.0 CLI:
//   openssl kdf -keylen N -kdfopt digest:MD5-SHA1 -kdfopt hexsecret:.. -kdfopt hexseed:.. TLS1-PRF
// with the seeds built the way OpenVPN builds them (openvpn.md §3.5):
//   pre_master = 00..2f, client random1 = 40..5f, server random1 = 80..9f,
//   client random2 = a0..bf, server random2 = c0..df, client sid = 0102030405060708, server sid = f1..f8
export const PRE_MASTER = seq(0x00, 48);
export const MASTER_SEED = Buffer.concat([Buffer.from('OpenVPN master secret'), seq(0x40, 32), seq(0x80, 32)]);
export const EXPANSION_SEED = Buffer.concat([
  Buffer.from('OpenVPN key expansion'),
  seq(0xa0, 32),
  seq(0xc0, 32),
  hex('0102030405060708'),
  hex('f1f2f3f4f5f6f7f8'),
]);
export const OPENVPN_MASTER = hex('9999e37f41b205a8183ce835da7daacfd52553e542564d04e4292100b00f5f1fe967f9d4f3888f285a5f119aff451e0d');
export const OPENVPN_KEY2 = hex(
  '12c31d3b9961256b4f81ab8f11c7da51f8e155505b7a4f47d7ee807e662789d219fa3dcdce1e223901f13e3dc92f6006' +
    'aeb29cac4662b11daa9ee15447ba6f618fcdbbe6ee430634bdfa53af4a61d03508fa944b1155e38d0995a556c785861e' +
    'f1fcd9853e0b190babc9188f97a5b3a2480eb1aecba0831f2f718b6f5f253ffea1e26a10ebb8b6c177e0e9716dc15532' +
    'fdec2114518baa143c752884b934b872ca23f1d78f0e7f94be7494ae00d2f46a0b4b115d069668ee4b2b9319456e974b' +
    '2b98d4330c885ea05b721238c22beaa76d155fd171ab3c34d90b73800e40c77946521b8a659e82d40a6f82ccc9428bb7' +
    'eb7e2c7b40493cd6b1f6f6e49267ab8e',
);

