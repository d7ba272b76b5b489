/**
 * The responder's choice in CREATE_CHILD_SA: which of the gateway's ESP or IKE proposals we accept, the
 * single-transform answer under their proposal number with our SPI, PFS groups matched against their KE
 * (INVALID_KE_PAYLOAD's group when only another group would do), and no choice at all when nothing fits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEspProposals, parseIkeProposals, espSaProposals, ikeSaProposals, chooseEspSuite, chooseIkeSuite } from '../../../src/ipsec/ike/proposals.js';
import { selectEspProposal, selectIkeProposal } from '../../../src/ipsec/ike/select.js';
import { TransformType } from '../../../src/wire/ike-constants.js';

const spiOf = (p: { spi: Uint8Array }) => Buffer.from(p.spi).readUInt32BE(0);

test('ESP: the first of their proposals we allow, one transform per type, our SPI, their SPI kept', () => {
  const theirs = espSaProposals(parseEspProposals(['aes256gcm16', 'aes128-sha256', 'aes128gcm16']), 0xc0ffee01);
  const ours = parseEspProposals(['aes128gcm16, aes128-sha256'.split(', ')[0]!, 'aes128-sha256']);
  const r = selectEspProposal(theirs, ours, 0xabcd0001, undefined);
  assert.ok('chosen' in r);
  assert.equal(r.chosen.suite.name, 'aes128-sha256', 'their second proposal: their first (aes256gcm16) is not ours');
  assert.equal(r.chosen.reply.number, 2);
  assert.equal(spiOf(r.chosen.reply), 0xabcd0001);
  assert.equal(r.chosen.peerSpi, 0xc0ffee01);
  assert.deepEqual(r.chosen.reply.transforms.map((t) => t.type), [TransformType.ENCR, TransformType.INTEG, TransformType.ESN]);
  assert.equal(r.chosen.esn, false);
  // The gateway, as initiator, accepts our answer with the code we use for IKE_AUTH.
  const back = chooseEspSuite(theirs, parseEspProposals(['aes256gcm16', 'aes128-sha256', 'aes128gcm16']), [r.chosen.reply]);
  assert.equal(back.suite.name, 'aes128-sha256');
  assert.equal(back.spi, 0xabcd0001);
});

test('ESP with PFS: the group of their KE, INVALID_KE_PAYLOAD for another shared one, none without a shared group', () => {
  const theirOffers = parseEspProposals(['aes128gcm16-ecp256-modp2048']);
  const theirs = espSaProposals(theirOffers, 0x1000, 19);
  const ours = parseEspProposals(['aes128gcm16-modp2048-ecp256']);
  const ok = selectEspProposal(theirs, ours, 0x2000, 19);
  assert.ok('chosen' in ok);
  assert.equal(ok.chosen.group, 19);
  assert.ok(ok.chosen.reply.transforms.some((t) => t.type === TransformType.DH && t.id === 19));
  const back = chooseEspSuite(theirs, theirOffers, [ok.chosen.reply]);
  assert.equal(back.group, 19);
  assert.deepEqual(selectEspProposal(theirs, parseEspProposals(['aes128gcm16-modp2048']), 0x2000, 19), { wantGroup: 14 });
  assert.deepEqual(selectEspProposal(theirs, parseEspProposals(['aes128gcm16-x25519']), 0x2000, 19), { none: true });
  assert.deepEqual(selectEspProposal(theirs, parseEspProposals(['aes128gcm16-ecp256']), 0x2000, undefined), { wantGroup: 19 }, 'a DH transform without a KE');
  assert.deepEqual(selectEspProposal(espSaProposals(parseEspProposals(['aes128gcm16']), 0x1000), parseEspProposals(['aes128gcm16-ecp256']), 0x2000, undefined), { none: true }, 'we insist on PFS');
});

test('ESP: nothing in common, reserved SPIs and other protocols are not chosen', () => {
  const ours = parseEspProposals(['chacha20poly1305']);
  assert.deepEqual(selectEspProposal(espSaProposals(parseEspProposals(['aes128gcm16']), 0x1000), ours, 0x2000, undefined), { none: true });
  assert.deepEqual(selectEspProposal(espSaProposals(parseEspProposals(['chacha20poly1305']), 5), ours, 0x2000, undefined), { none: true });
});

test('IKE SA rekey: our new SPI in the answer, their SPI kept, the suite named as strongSwan does, the group of their KE', () => {
  const theirOffers = parseIkeProposals(['aes256gcm16-prfsha384-ecp384-x25519', 'aes128-sha256-modp2048']);
  const sent = ikeSaProposals(theirOffers, 31);
  const theirSpi = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  for (const p of sent.proposals) p.spi = theirSpi;
  const ourSpi = Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]);
  const r = selectIkeProposal(sent.proposals, parseIkeProposals(['aes256gcm16-prfsha384-x25519']), ourSpi, 31);
  assert.ok('chosen' in r);
  assert.equal(r.chosen.suite.text, 'AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519');
  assert.deepEqual([...r.chosen.peerSpi], [...theirSpi]);
  assert.deepEqual([...r.chosen.reply.spi], [...ourSpi]);
  // the initiator's check of it
  const back = chooseIkeSuite(sent, [r.chosen.reply], true);
  assert.equal(back.text, 'AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519');
  const all = ikeSaProposals(theirOffers); // both proposals, their KE for x25519
  for (const p of all.proposals) p.spi = theirSpi;
  assert.deepEqual(selectIkeProposal(all.proposals, parseIkeProposals(['aes128-sha256-modp2048']), ourSpi, 31), { wantGroup: 14 });
  assert.deepEqual(selectIkeProposal(sent.proposals, parseIkeProposals(['aes192-sha1-modp3072']), ourSpi, 31), { none: true });
  assert.throws(() => chooseIkeSuite(sent, [{ ...r.chosen.reply, spi: new Uint8Array(0) }], true), /SPI of 0 bytes/);
});
