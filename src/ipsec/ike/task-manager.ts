/**
 * Everything an IKE SA does once IKE_AUTH is done (RFC 7296 §1.3, §1.4, §2.4, §2.8, §2.18, §2.25), sans-I/O on
 * the caller's clock, as small tasks on the IKE SA (strongSwan's task manager is the model):
 *
 *  - our requests, one in flight at a time (window size 1) and the rest queued: a liveness check (DPD) after
 *    `dpdDelay` seconds without anything from the gateway, the rekey of the CHILD_SA (its soft lifetime,
 *    told by the session) and of the IKE SA (`rekey_time` less up to `rand_time`), the DELETE of what a rekey
 *    replaced, and the DELETE of the IKE SA on close();
 *  - the gateway's requests, answered once and from the cache when retransmitted: DPD, DELETE of a CHILD_SA or
 *    of the IKE SA, CREATE_CHILD_SA rekeying the CHILD_SA or the IKE SA (other CREATE_CHILD_SA requests get
 *    NO_ADDITIONAL_SAS);
 *  - make-before-break: a new CHILD_SA's inbound SA is installed as soon as its keys exist; the rekey's
 *    initiator sends on it at once (when it is ours, as soon as the response is in), the responder when the
 *    old SA's DELETE arrives; the old inbound SA keeps working until it is deleted;
 *  - the IKE SA rekey with the role flip: whoever started the rekey is the new IKE SA's original initiator
 *    (SPI first, I flag, SK_ei/SK_ai), message IDs start again at 0 both ways, and the old IKE SA stays until
 *    its DELETE (requests still in flight on it move to the new one);
 *  - collisions, both sides rekeying the same SA at once: both exchanges complete, then the SA made with the
 *    lowest of the four nonces is deleted by the side that made it (RFC 7296 §2.8.1); a rekey of an SA that we
 *    are deleting is refused with TEMPORARY_FAILURE (§2.25).
 *
 * The CHILD_SAs are described to the session by events (child-added, child-outbound, child-removed); the
 * session owns the ESP SAs themselves. The rekey exchanges' payloads and keys are rekey.ts's; what is current,
 * what is queued and what goes are decided here.
 */
import { groupName, type KeyExchange } from '../../crypto/dh.js';
import { jittered } from '../../crypto/lifetime.js';
import { VpnError } from '../../errors.js';
import type { CloseReason } from '../../session/types.js';
import type { Logger } from '../../util/log.js';
import { IkeExchange, NotifyType, PayloadType, ProtocolId, exchangeName, notifyName } from '../../wire/ike-constants.js';
import { isResponse, parseIkeMessage, type IkeMessage, type IkePayload } from '../../wire/ike.js';
import { buildDelete, parseDelete, parseKe, parseNonce, parseSa, type KePayload, type Proposal } from '../../wire/ike-payloads.js';
import { isFragment, type IkeSa } from './ike-sa.js';
import { describeMessage, errorNotifies, findNotify, firstOfType, notify, payload } from './messages.js';
import type { EspOffer, IkeOffer } from './proposals.js';
import { answerChildRekey, answerIkeRekey, childFromRekeyResponse, childRekeyRequest, ikeRekeyRequest, ikeSaFromRekeyResponse, type ChildRekeyRequest, type IkeRekeyRequest, type IkeSaSettings, type ChildSaSpec } from './rekey.js';

export type { ChildSaSpec } from './rekey.js';

export type TaskEvent =
  | { type: 'send'; message: Uint8Array }
  /** Install this CHILD_SA's inbound SA now (keep the outbound one ready). */
  | { type: 'child-added'; child: ChildSaSpec }
  /** Send with the CHILD_SA whose inbound SPI is `spiIn` from now on. */
  | { type: 'child-outbound'; spiIn: number }
  /** The CHILD_SA whose inbound SPI is `spiIn` is gone: stop accepting it. */
  | { type: 'child-removed'; spiIn: number }
  /** The IKE SA was rekeyed: these are its SPIs and suite now. */
  | { type: 'ike-rekeyed'; spiI: string; spiR: string; proposal: string }
  | { type: 'ended'; reason: CloseReason; error?: VpnError };

/** The IKE SA's own settings (retransmissions, the gateway's name, fragmentation, randomness, log) and the rest. */
export interface TaskManagerConfig extends IkeSaSettings {
  ike: readonly IkeOffer[];
  esp: readonly EspOffer[];
  /** IKE SA rekey after this many seconds (0: never), less up to `ikeRandSeconds`. */
  ikeRekeySeconds: number;
  ikeRandSeconds: number;
  /** A liveness check after this many seconds without anything from the gateway (0: none). */
  dpdDelaySeconds: number;
  /** A liveness check gives up after this many seconds (dpd_timeout; 0: when the retransmissions run out). */
  dpdTimeoutSeconds?: number;
  /** Uniform [0, 1) for rand_time (tests fix it). */
  uniform?: () => number;
  keyExchange?: (group: number) => KeyExchange;
  /** What has come in from the gateway so far (ESP packets, IKE messages): unchanged for dpdDelay means silence. */
  inboundCount: () => number;
}

type ChildState = 'active' | 'new' | 'replaced' | 'deleting' | 'redundant';

interface Child extends ChildSaSpec {
  state: ChildState;
  /** The nonces of the exchange that made it (collisions compare them). */
  nonces?: readonly Uint8Array[];
  /** The CHILD_SA this one replaces. */
  replaces?: number;
}

type Task =
  | { kind: 'dpd' }
  | { kind: 'child-rekey'; spiIn: number; group?: number }
  | { kind: 'child-delete'; spiIn: number }
  | { kind: 'ike-rekey'; group?: number }
  | { kind: 'ike-delete'; sa: IkeSa }
  | { kind: 'close' };

interface InFlight {
  task: Task;
  sa: IkeSa;
  child?: ChildRekeyRequest;
  ike?: IkeRekeyRequest;
  /** A rekey of the same SA by the gateway that crossed ours: what it made. */
  collision?: { child?: number; ike?: IkeSa; nonces: readonly Uint8Array[] };
}

const RETRY_MS = 10_000;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const hex32 = (n: number) => n.toString(16).padStart(8, '0');
const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const u32 = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
const deleteIke = () => payload(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.IKE, spiSize: 0, spis: [] }));
const deleteEsp = (spis: number[]) => payload(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.ESP, spiSize: 4, spis: spis.map(be32) }));
const cmp = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const lowest = (ns: readonly Uint8Array[]) => ns.reduce((m, n) => (cmp(n, m) < 0 ? n : m));

export class TaskManager {
  private sa: IkeSa;
  /** IKE SAs replaced by a rekey (or made redundant by a collision) until their DELETE is done. */
  private old: IkeSa[] = [];
  private readonly children = new Map<number, Child>();
  private readonly queue: Task[] = [];
  private inflight: InFlight | undefined;
  private ended = false;
  private closing = false;
  private out: TaskEvent[] = [];
  private readonly c: TaskManagerConfig;
  private readonly log: Logger;
  private ikeRekeyAt: number | undefined;
  private dpdCheckAt: number | undefined;
  private dpdSeen = -1;
  private retryAt: number | undefined;
  private readonly retryTasks: Task[] = [];
  private counts = { childRekeys: 0, ikeRekeys: 0, peerRequests: 0, dpdSent: 0 };

  constructor(sa: IkeSa, child: ChildSaSpec, config: TaskManagerConfig, now: number) {
    this.sa = sa;
    this.c = config;
    this.log = config.log;
    this.children.set(child.spiIn, { ...child, state: 'active' });
    this.scheduleIkeRekey(now);
    if (config.dpdDelaySeconds > 0) {
      this.dpdCheckAt = now + config.dpdDelaySeconds * 1000;
      this.dpdSeen = config.inboundCount();
    }
  }

  /** The current IKE SA. */
  get ikeSa(): IkeSa {
    return this.sa;
  }

  /** The CHILD_SA we send with. */
  get activeChild(): ChildSaSpec | undefined {
    return [...this.children.values()].find((c) => c.state === 'active');
  }

  /** Counters for /metrics: rekeys done, the gateway's requests answered, DPDs sent. */
  get stats(): Readonly<{ childRekeys: number; ikeRekeys: number; peerRequests: number; dpdSent: number }> {
    return this.counts;
  }

  deadline(): number | undefined {
    if (this.ended) return undefined;
    const ds = [this.inflight?.sa.requests.deadline(), this.ikeRekeyAt, this.dpdCheckAt, this.retryAt].filter((x): x is number => x !== undefined);
    return ds.length ? Math.min(...ds) : undefined;
  }

  // ---------------------------------------------------------------- input

  receive(raw: Uint8Array, now: number): TaskEvent[] {
    if (this.ended) return [];
    let msg: IkeMessage;
    try {
      msg = parseIkeMessage(raw);
    } catch (e) {
      this.log.debug(`malformed IKE message dropped: ${(e as Error).message}`);
      return [];
    }
    const sa = [this.sa, ...this.old, ...this.pendingIkeSas].find((s) => s.owns(msg.header));
    if (!sa) {
      this.log.debug(`IKE message for an IKE SA we do not have dropped (${describeMessage(msg.header, msg.payloads)})`);
      return [];
    }
    try {
      if (isResponse(msg.header)) this.onResponse(sa, raw, msg, now);
      else this.onRequest(sa, raw, msg, now);
    } catch (e) {
      const err = e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message);
      if (err.code === 'WIRE') this.log.debug(`IKE message dropped: ${err.message}`);
      else this.end('protocol-error', err);
    }
    this.pump(now);
    return this.flush();
  }

  onTimer(now: number): TaskEvent[] {
    if (this.ended) return [];
    const f = this.inflight;
    if (f) {
      const r = f.sa.requests.onTimer(now);
      if (r && 'resend' in r) {
        this.log.debug(`retransmitting ${f.sa.requests.outstanding?.what ?? 'request'}${r.resend.length > 1 ? ` (all ${r.resend.length} fragments)` : ''}`);
        for (const message of r.resend) this.out.push({ type: 'send', message });
      } else if (r && 'timeout' in r) this.onTimeout(f, r.timeout);
    }
    if (this.ikeRekeyAt !== undefined && now >= this.ikeRekeyAt) {
      this.ikeRekeyAt = undefined;
      this.enqueue({ kind: 'ike-rekey' });
    }
    if (this.dpdCheckAt !== undefined && now >= this.dpdCheckAt) {
      const seen = this.c.inboundCount();
      if (seen === this.dpdSeen && !this.inflight && !this.queue.some((t) => t.kind === 'dpd')) this.enqueue({ kind: 'dpd' });
      this.dpdSeen = seen;
      this.dpdCheckAt = now + this.c.dpdDelaySeconds * 1000;
    }
    if (this.retryAt !== undefined && now >= this.retryAt) {
      this.retryAt = undefined;
      for (const t of this.retryTasks.splice(0)) this.enqueue(t);
    }
    this.pump(now);
    return this.flush();
  }

  /** The session's CHILD_SA reached its soft lifetime: rekey it (make-before-break). */
  rekeyChild(now: number): TaskEvent[] {
    const a = this.activeChild;
    if (!this.ended && a && !this.busyWith((t) => t.kind === 'child-rekey')) this.enqueue({ kind: 'child-rekey', spiIn: a.spiIn });
    this.pump(now);
    return this.flush();
  }

  /** Rekeys the IKE SA now (tests, or a caller's schedule). */
  rekeyIke(now: number): TaskEvent[] {
    if (!this.ended && !this.busyWith((t) => t.kind === 'ike-rekey')) this.enqueue({ kind: 'ike-rekey' });
    this.pump(now);
    return this.flush();
  }

  /** Leaves: a DELETE of the IKE SA ('ended' follows its answer or timeout). Queued work is dropped. */
  close(now: number): TaskEvent[] {
    if (this.ended || this.closing) return [];
    this.closing = true;
    this.queue.length = 0;
    this.retryTasks.length = 0;
    this.ikeRekeyAt = this.dpdCheckAt = this.retryAt = undefined;
    if (this.inflight) {
      this.inflight.sa.requests.complete();
      this.inflight = undefined;
    }
    this.queue.push({ kind: 'close' });
    this.pump(now);
    return this.flush();
  }

  // ---------------------------------------------------------------- our requests

  private busyWith(pred: (t: Task) => boolean): boolean {
    return (this.inflight !== undefined && pred(this.inflight.task)) || this.queue.some(pred) || this.retryTasks.some(pred);
  }

  private enqueue(t: Task): void {
    if (this.closing) return;
    this.queue.push(t);
  }

  private pump(now: number): void {
    while (!this.ended && !this.inflight && this.queue.length > 0) {
      const t = this.queue.shift()!;
      this.start(t, now);
    }
  }

  private send(datagrams: readonly Uint8Array[]): void {
    for (const message of datagrams) this.out.push({ type: 'send', message });
  }

  private start(task: Task, now: number): void {
    const sa = task.kind === 'ike-delete' ? task.sa : this.sa;
    const f: InFlight = { task, sa };
    let inner: IkePayload[];
    let what: string;
    switch (task.kind) {
      case 'dpd':
        inner = [];
        what = 'INFORMATIONAL (DPD)';
        this.counts.dpdSent++;
        break;
      case 'close':
        inner = [deleteIke()];
        what = 'INFORMATIONAL (DELETE)';
        break;
      case 'ike-delete':
        inner = [deleteIke()];
        what = `INFORMATIONAL (DELETE of the old IKE SA ${task.sa.name})`;
        break;
      case 'child-delete': {
        const ch = this.children.get(task.spiIn);
        if (!ch) return;
        ch.state = ch.state === 'redundant' ? 'redundant' : 'deleting';
        inner = [deleteEsp([task.spiIn])];
        what = `INFORMATIONAL (DELETE of CHILD_SA ${hex32(task.spiIn)})`;
        break;
      }
      case 'child-rekey': {
        const ch = this.children.get(task.spiIn);
        if (!ch || ch.state !== 'active') return;
        const group = task.group ?? this.c.esp.find((o) => o.groups.length > 0)?.groups[0];
        f.child = childRekeyRequest(ch, this.c.esp, this.randomSpi(), Uint8Array.from(this.c.random(32)), group, this.c.keyExchange);
        inner = f.child.inner;
        what = `CREATE_CHILD_SA (rekey of CHILD_SA ${hex32(ch.spiIn)})`;
        this.log.info(`rekeying CHILD_SA ${hex32(ch.spiIn)}_i ${hex32(ch.spiOut)}_o`);
        break;
      }
      case 'ike-rekey': {
        const group = task.group ?? this.sa.suite.dhGroup;
        f.ike = ikeRekeyRequest(this.c.ike, this.randomIkeSpi(), Uint8Array.from(this.c.random(32)), group, this.c.keyExchange);
        inner = f.ike.inner;
        what = 'CREATE_CHILD_SA (rekey of the IKE SA)';
        this.log.info(`rekeying IKE SA ${this.sa.name} (${groupName(group)})`);
        break;
      }
    }
    this.inflight = f;
    const giveUp = task.kind === 'dpd' && this.c.dpdTimeoutSeconds ? this.c.dpdTimeoutSeconds * 1000 : undefined;
    this.send(sa.request(task.kind === 'child-rekey' || task.kind === 'ike-rekey' ? IkeExchange.CREATE_CHILD_SA : IkeExchange.INFORMATIONAL, inner, now, what, giveUp));
  }

  private onTimeout(f: InFlight, err: VpnError): void {
    this.inflight = undefined;
    if (f.task.kind === 'close') {
      this.end('user');
      return;
    }
    if (f.task.kind === 'ike-delete' || f.sa !== this.sa) {
      this.dropOldIke(f.sa);
      return;
    }
    const what = f.task.kind === 'dpd' ? 'our liveness check (DPD)' : f.sa.requests.outstanding?.what ?? 'our request';
    this.end('ping-restart', new VpnError('HANDSHAKE_TIMEOUT', `the gateway stopped answering: ${what} went unanswered (${err.message})`));
  }

  private onResponse(sa: IkeSa, raw: Uint8Array, msg: IkeMessage, now: number): void {
    const f = this.inflight;
    const h = msg.header;
    if (!f || f.sa !== sa || !sa.requests.matches(h.exchange, h.messageId)) return;
    const inner = sa.open(raw, msg, 'response');
    if (!inner) return;
    this.log.debug(`received ${describeMessage(h, inner)}`);
    sa.requests.complete();
    this.inflight = undefined;
    switch (f.task.kind) {
      case 'close':
        this.end('user');
        return;
      case 'dpd':
        return;
      case 'ike-delete':
        this.dropOldIke(f.task.sa);
        return;
      case 'child-delete':
        this.removeChild(f.task.spiIn);
        return;
      case 'child-rekey':
        this.onChildRekeyResponse(f, f.task, inner, now);
        return;
      case 'ike-rekey':
        this.onIkeRekeyResponse(f, f.task, inner, now);
        return;
    }
  }

  private retryLater(t: Task, why: string, now: number): void {
    this.log.warn(`${why}; trying again in ${RETRY_MS / 1000} s`);
    this.retryTasks.push(t);
    this.retryAt ??= now + RETRY_MS;
  }

  private onChildRekeyResponse(f: InFlight, task: Extract<Task, { kind: 'child-rekey' }>, p: IkePayload[], now: number): void {
    const old = this.children.get(task.spiIn);
    const errs = errorNotifies(p);
    if (errs.length > 0) {
      const e = errs[0]!;
      if (e.type === NotifyType.INVALID_KE_PAYLOAD && e.data.length === 2 && task.group === undefined) {
        this.enqueue({ ...task, group: (e.data[0]! << 8) | e.data[1]! });
        return;
      }
      if (e.type === NotifyType.CHILD_SA_NOT_FOUND) {
        this.log.warn(`the gateway no longer has CHILD_SA ${hex32(task.spiIn)} (CHILD_SA_NOT_FOUND)`);
        return;
      }
      if (old && old.state === 'active') this.retryLater(task, `the gateway refused our CHILD_SA rekey (${notifyName(e.type)})`, now);
      return;
    }
    if (!old) return;
    const child: Child = { ...childFromRekeyResponse(f.child!, p, this.sa), state: 'new', replaces: old.spiIn };
    this.children.set(child.spiIn, child);
    this.out.push({ type: 'child-added', child: spec(child) });
    this.counts.childRekeys++;
    const crossed = f.collision?.child !== undefined ? this.children.get(f.collision.child) : undefined;
    if (crossed && f.collision) {
      // Both sides rekeyed this CHILD_SA: the SA made with the lowest nonce goes, deleted by its maker (§2.8.1).
      const low = lowest([...child.nonces!, ...f.collision.nonces]);
      if (child.nonces!.includes(low)) {
        this.log.info(`CHILD_SA rekey collision: ours (${hex32(child.spiIn)}) has the lowest nonce and is redundant; deleting it, the gateway's replaces ${hex32(old.spiIn)}`);
        child.state = 'redundant';
        this.enqueue({ kind: 'child-delete', spiIn: child.spiIn });
        return;
      }
      this.log.info(`CHILD_SA rekey collision: the gateway's (${hex32(crossed.spiIn)}) has the lowest nonce; it will delete it, ours replaces ${hex32(old.spiIn)}`);
      crossed.state = 'redundant';
    }
    this.activate(child);
    old.state = 'replaced';
    this.log.info(`CHILD_SA rekeyed: ${hex32(child.spiIn)}_i ${hex32(child.spiOut)}_o replaces ${hex32(old.spiIn)}_i`);
    this.enqueue({ kind: 'child-delete', spiIn: old.spiIn });
  }

  private onIkeRekeyResponse(f: InFlight, task: Extract<Task, { kind: 'ike-rekey' }>, p: IkePayload[], now: number): void {
    const errs = errorNotifies(p);
    if (errs.length > 0) {
      const e = errs[0]!;
      if (e.type === NotifyType.INVALID_KE_PAYLOAD && e.data.length === 2 && task.group === undefined) {
        this.enqueue({ kind: 'ike-rekey', group: (e.data[0]! << 8) | e.data[1]! });
        return;
      }
      this.retryLater({ kind: 'ike-rekey' }, `the gateway refused our IKE SA rekey (${notifyName(e.type)})`, now);
      return;
    }
    const { sa: newSa, nonceR } = ikeSaFromRekeyResponse(f.ike!, p, this.sa, this.settings());
    this.counts.ikeRekeys++;
    const crossed = f.collision?.ike;
    if (crossed && f.collision) {
      const low = lowest([f.ike!.nonce, nonceR, ...f.collision.nonces]);
      if (low === f.ike!.nonce || low === nonceR) {
        this.log.info(`IKE SA rekey collision: ours (${newSa.name}) has the lowest nonce and is redundant; deleting it, the gateway's ${crossed.name} replaces ${this.sa.name}`);
        this.old.push(newSa);
        this.enqueue({ kind: 'ike-delete', sa: newSa });
        this.adopt(crossed, now, false);
        return;
      }
      this.log.info(`IKE SA rekey collision: the gateway's ${crossed.name} has the lowest nonce; it will delete it`);
      this.pendingIkeSas = this.pendingIkeSas.filter((s) => s !== crossed);
      this.old.push(crossed);
    }
    this.adopt(newSa, now, true);
  }

  /** `sa` becomes the current IKE SA; the previous one is kept until deleted (by us when `weDelete`). */
  private adopt(sa: IkeSa, now: number, weDelete: boolean): void {
    const prev = this.sa;
    this.sa = sa;
    this.old.push(prev);
    this.pendingIkeSas = this.pendingIkeSas.filter((s) => s !== sa);
    this.log.info(`IKE SA rekeyed: ${sa.name} (${sa.suite.text}) replaces ${prev.name}; we are its ${sa.initiator ? 'initiator' : 'responder'} now`);
    this.out.push({ type: 'ike-rekeyed', spiI: hex(sa.spiI), spiR: hex(sa.spiR), proposal: sa.suite.text });
    this.scheduleIkeRekey(now);
    if (weDelete) this.enqueue({ kind: 'ike-delete', sa: prev });
  }

  private dropOldIke(sa: IkeSa): void {
    this.old = this.old.filter((s) => s !== sa);
    this.pendingIkeSas = this.pendingIkeSas.filter((s) => s !== sa);
    // A request of ours left on it goes again on the current IKE SA.
    const f = this.inflight;
    if (f && f.sa === sa && f.task.kind !== 'ike-delete') {
      this.inflight = undefined;
      if (f.task.kind !== 'dpd') this.queue.unshift(f.task);
    }
  }

  // ---------------------------------------------------------------- the gateway's requests

  /** IKE SAs the gateway created by a rekey that crossed ours, not yet current nor deleted. */
  private pendingIkeSas: IkeSa[] = [];

  private onRequest(sa: IkeSa, raw: Uint8Array, msg: IkeMessage, now: number): void {
    const h = msg.header;
    const kind = sa.peer.classify(h.messageId);
    if (kind === 'old') return;
    if (kind === 'retransmit') {
      // Answer a retransmission once it proves authentic (the first fragment of a fragmented one).
      if (sa.fragmentNumber(raw, msg) === 1 || (!isFragment(msg) && sa.open(raw, msg, 'request'))) this.send(sa.cachedResponse());
      return;
    }
    const inner = sa.open(raw, msg, 'request');
    if (!inner) return;
    this.log.debug(`received ${describeMessage(h, inner)}`);
    this.counts.peerRequests++;
    let reply: IkePayload[] = [];
    let after: (() => void) | undefined;
    if (h.exchange === IkeExchange.INFORMATIONAL) {
      const r = this.onInformational(sa, inner, now);
      reply = r.reply;
      after = r.after;
    } else if (h.exchange === IkeExchange.CREATE_CHILD_SA) {
      const r = this.onCreateChildSa(sa, inner, now);
      reply = r.reply;
      after = r.after;
    } else {
      this.log.debug(`${exchangeName(h.exchange)} request from the gateway ignored`);
      return;
    }
    this.send(sa.respond(h, reply));
    after?.();
  }

  private onInformational(sa: IkeSa, inner: IkePayload[], now: number): { reply: IkePayload[]; after?: () => void } {
    const dels = inner.filter((x) => x.type === PayloadType.DELETE).map((x) => parseDelete(x.body));
    for (const n of errorNotifies(inner)) this.log.warn(`the gateway notified ${notifyName(n.type)}`);
    if (dels.some((d) => d.protocol === ProtocolId.IKE)) {
      if (sa === this.sa) {
        return { reply: [], after: () => this.end('server-exit', new VpnError('PROTOCOL', 'the gateway deleted the IKE SA')) };
      }
      this.log.debug(`the gateway deleted the old IKE SA ${sa.name}`);
      return { reply: [], after: () => this.dropOldIke(sa) };
    }
    const ours: number[] = [];
    let lost = false;
    for (const d of dels.filter((x) => x.protocol === ProtocolId.ESP && x.spiSize === 4)) {
      for (const s of d.spis) {
        const ch = [...this.children.values()].find((c) => c.spiOut === u32(s));
        if (!ch) continue;
        ours.push(ch.spiIn);
        if (ch.state === 'active') {
          // The gateway rekeyed it and now deletes it: we send on the new CHILD_SA from here on (the responder's switch).
          const next = [...this.children.values()].find((c) => c.state === 'new' && c.replaces === ch.spiIn);
          if (!next) {
            lost = true;
            continue;
          }
          this.activate(next);
        }
        this.removeChild(ch.spiIn);
      }
    }
    if (dels.length === 0) return { reply: [] }; // a liveness check
    const reply = ours.length > 0 ? [deleteEsp(ours)] : [];
    if (lost) {
      return {
        reply,
        after: () => {
          for (const spi of ours) this.removeChild(spi);
          this.deleteAndEnd(now, 'server-exit', new VpnError('PROTOCOL', 'the gateway deleted the CHILD_SA'));
        },
      };
    }
    return { reply };
  }

  private onCreateChildSa(sa: IkeSa, inner: IkePayload[], now: number): { reply: IkePayload[]; after?: () => void } {
    const rekey = findNotify(inner, NotifyType.REKEY_SA);
    const saP = firstOfType(inner, PayloadType.SA);
    const nP = firstOfType(inner, PayloadType.NONCE);
    if (!saP || !nP) return { reply: [notify(NotifyType.INVALID_SYNTAX)] };
    const proposals = parseSa(saP.body);
    const keP = firstOfType(inner, PayloadType.KE);
    const ke = keP ? parseKe(keP.body) : undefined;
    const nonceI = parseNonce(nP.body);
    if (!rekey && proposals.some((p) => p.protocol === ProtocolId.IKE)) return this.onIkeRekeyRequest(sa, proposals, nonceI, ke, now);
    if (!rekey || rekey.protocol !== ProtocolId.ESP || rekey.spi.length !== 4) {
      this.log.info('the gateway asked for another CHILD_SA; refusing with NO_ADDITIONAL_SAS (one CHILD_SA per connection)');
      return { reply: [notify(NotifyType.NO_ADDITIONAL_SAS)] };
    }
    const old = [...this.children.values()].find((c) => c.spiOut === u32(rekey.spi));
    if (!old) return { reply: [notify(NotifyType.CHILD_SA_NOT_FOUND, new Uint8Array(0), ProtocolId.ESP, rekey.spi)] };
    if (old.state === 'deleting' || old.state === 'replaced') {
      this.log.debug(`the gateway rekeys CHILD_SA ${hex32(old.spiIn)}, which we are deleting: TEMPORARY_FAILURE`);
      return { reply: [notify(NotifyType.TEMPORARY_FAILURE)] };
    }
    const a = answerChildRekey(inner, old, this.c.esp, this.sa, this.randomSpi(), Uint8Array.from(this.c.random(32)), this.c.keyExchange);
    if (!a.made) {
      this.log.warn(`the gateway's CHILD_SA rekey proposals do not fit ours (${this.c.esp.map((o) => o.keyword).join(', ')}): ${describeMessage(sa.header(IkeExchange.CREATE_CHILD_SA, 0, true), a.reply)}`);
      return { reply: a.reply };
    }
    const child: Child = { ...a.made, state: 'new', replaces: old.spiIn };
    this.children.set(child.spiIn, child);
    this.out.push({ type: 'child-added', child: spec(child) });
    this.counts.childRekeys++;
    const f = this.inflight;
    if (f && f.task.kind === 'child-rekey' && f.task.spiIn === old.spiIn) f.collision = { child: child.spiIn, nonces: child.nonces! };
    this.log.info(`the gateway rekeys CHILD_SA ${hex32(old.spiIn)}_i: new ${hex32(child.spiIn)}_i ${hex32(child.spiOut)}_o (${child.suite.name}${child.esn ? '-esn' : ''})`);
    return { reply: a.reply };
  }

  private onIkeRekeyRequest(sa: IkeSa, proposals: Proposal[], nonceI: Uint8Array, ke: KePayload | undefined, now: number): { reply: IkePayload[]; after?: () => void } {
    if (sa !== this.sa || this.closing) return { reply: [notify(NotifyType.TEMPORARY_FAILURE)] };
    const a = answerIkeRekey(proposals, nonceI, ke, sa, this.c.ike, this.randomIkeSpi(), Uint8Array.from(this.c.random(32)), this.settings(), this.c.keyExchange);
    const newSa = a.made;
    if (!newSa) {
      this.log.warn(`the gateway's IKE SA rekey does not fit our proposals: ${describeMessage(sa.header(IkeExchange.CREATE_CHILD_SA, 0, true), a.reply)}`);
      return { reply: a.reply };
    }
    this.counts.ikeRekeys++;
    const f = this.inflight;
    if (f && f.task.kind === 'ike-rekey' && f.sa === sa) {
      // Ours is in flight too: decide when its response is in (§2.8.1); meanwhile the new SA takes the gateway's messages.
      f.collision = { ike: newSa, nonces: [nonceI, parseNonce(firstOfType(a.reply, PayloadType.NONCE)!.body)] };
      this.pendingIkeSas.push(newSa);
      return { reply: a.reply };
    }
    return { reply: a.reply, after: () => this.adopt(newSa, now, false) };
  }

  // ---------------------------------------------------------------- helpers

  private settings(): IkeSaSettings {
    const c = this.c;
    return { retransmit: c.retransmit, peerName: c.peerName, fragmentation: c.fragmentation, peerFragments: c.peerFragments, fragmentLimit: c.fragmentLimit, random: c.random, log: this.log };
  }

  private activate(child: Child): void {
    for (const c of this.children.values()) if (c.state === 'active' && c !== child) c.state = 'replaced';
    child.state = 'active';
    this.out.push({ type: 'child-outbound', spiIn: child.spiIn });
  }

  private removeChild(spiIn: number): void {
    const ch = this.children.get(spiIn);
    if (!ch || ch.state === 'active') return;
    this.children.delete(spiIn);
    this.out.push({ type: 'child-removed', spiIn });
  }

  private scheduleIkeRekey(now: number): void {
    const secs = jittered(this.c.ikeRekeySeconds > 0 ? this.c.ikeRekeySeconds : undefined, this.c.ikeRandSeconds, this.c.uniform);
    this.ikeRekeyAt = secs === undefined ? undefined : now + secs * 1000;
  }

  /** Tells the gateway the IKE SA is gone (one DELETE, not waited for) and ends. */
  private deleteAndEnd(now: number, reason: CloseReason, error: VpnError): void {
    if (this.inflight) this.inflight.sa.requests.complete();
    this.inflight = undefined;
    this.send(this.sa.request(IkeExchange.INFORMATIONAL, [deleteIke()], now, 'INFORMATIONAL (DELETE)'));
    this.end(reason, error);
  }

  private end(reason: CloseReason, error?: VpnError): void {
    if (this.ended) return;
    this.ended = true;
    this.sa.requests.complete();
    this.out.push(error ? { type: 'ended', reason, error } : { type: 'ended', reason });
  }

  private flush(): TaskEvent[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  private randomSpi(): number {
    for (;;) {
      const v = u32(this.c.random(4));
      if (v >= 256 && !this.children.has(v)) return v;
    }
  }

  private randomIkeSpi(): Uint8Array {
    for (;;) {
      const b = Uint8Array.from(this.c.random(8));
      if (b.some((x) => x !== 0)) return b;
    }
  }
}

function spec(c: Child): ChildSaSpec {
  return { suite: c.suite, esn: c.esn, spiIn: c.spiIn, spiOut: c.spiOut, inbound: c.inbound, outbound: c.outbound, tsi: c.tsi, tsr: c.tsr };
}
