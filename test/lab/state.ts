/**
 * Lab bookkeeping on disk, so that labs of killed runs can be found and removed:
 *
 *   $VPNPROXY_LAB_DIR (default /run/vpnproxy-lab)/
 *     runs/<runId>/owner.json   who owns the run (pid + start time + boot id), its slot, whether persistent
 *     runs/<runId>/...          PKI, configs, logs of that run
 *     slots/<n>/run             slot n (1..150) is taken by run <runId>; the lab uses 10.<100+n>.0.0/16
 *
 * Names: every namespace of a run is `vp<runId>-<role>`, every root-namespace veth end `vp<runId>-<xy>`, and
 * runId is 6 hex digits, so leftovers can be recognised by name alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { LabError, killSync, pidAlive, pidStartTime, runSync } from './exec.js';

/** Root of all lab state (env VPNPROXY_LAB_DIR overrides). */
export const LAB_ROOT = process.env.VPNPROXY_LAB_DIR ?? '/run/vpnproxy-lab';
/** Slots 1..MAX_SLOT map to 10.101.0.0/16 .. 10.250.0.0/16. */
export const MAX_SLOT = 150;
const NAME_RE = /^vp([0-9a-f]{6})-([a-z0-9]+)$/;

export interface OwnerInfo {
  runId: string;
  pid: number;
  /** /proc start time of the owner, to tell a reused pid apart. */
  start: string;
  bootId: string;
  /** Persistent labs (`lab up --detach`) are not swept while their owner is dead; `lab down` removes them. */
  persistent: boolean;
  slot?: number;
  created: string;
  /** Free text shown by `lab status` (addresses etc.). */
  info?: Record<string, unknown>;
}

export const runsDir = (): string => join(LAB_ROOT, 'runs');
export const slotsDir = (): string => join(LAB_ROOT, 'slots');
export const runDir = (runId: string): string => join(runsDir(), runId);
/** Second octet of a slot's addresses. */
export const slotOctet = (slot: number): number => 100 + slot;
/** Prefix of every namespace and root veth name of a run. */
export const namePrefix = (runId: string): string => `vp${runId}`;

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2));
  renameSync(tmp, path);
}

export function readOwner(runId: string): OwnerInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir(runId), 'owner.json'), 'utf8')) as OwnerInfo;
  } catch {
    return undefined;
  }
}

export function writeOwner(owner: OwnerInfo): void {
  writeJsonAtomic(join(runDir(owner.runId), 'owner.json'), owner);
}

/** True if the process that owns the run is still the same live process. */
export function ownerAlive(o: OwnerInfo): boolean {
  return o.bootId === bootId() && pidAlive(o.pid) && pidStartTime(o.pid) === o.start;
}

/** Creates a fresh run directory owned by this process. */
export function createRun(persistent = false): OwnerInfo {
  mkdirSync(runsDir(), { recursive: true });
  for (;;) {
    const runId = randomBytes(3).toString('hex');
    try {
      mkdirSync(runDir(runId), { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    const owner: OwnerInfo = {
      runId,
      pid: process.pid,
      start: pidStartTime(process.pid) ?? '',
      bootId: bootId(),
      persistent,
      created: new Date().toISOString(),
    };
    writeOwner(owner);
    return owner;
  }
}

function slotRun(slot: number): string | undefined {
  try {
    return readFileSync(join(slotsDir(), String(slot), 'run'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return Infinity;
  }
}

/** Routes in the root namespace inside 10.<octet>.0.0/16 other than our own guard route. */
function foreignRoutes(octet: number): string[] {
  const r = runSync('ip', ['-4', 'route', 'show', 'table', 'all', 'root', `10.${octet}.0.0/16`]);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith(`unreachable 10.${octet}.0.0/16`));
}

/**
 * Takes a free slot for the run with an atomic mkdir. A slot held by a dead owner is swept and reused.
 * Slots whose address range already has routes in the root namespace (someone else's network) are skipped.
 */
export function allocateSlot(owner: OwnerInfo): number {
  mkdirSync(slotsDir(), { recursive: true });
  for (let slot = 1; slot <= MAX_SLOT; slot++) {
    const dir = join(slotsDir(), String(slot));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        mkdirSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const holder = slotRun(slot);
        if (holder === undefined) {
          if (ageMs(dir) > 30_000) rmSync(dir, { recursive: true, force: true });
          continue;
        }
        const o = readOwner(holder);
        if (!o) {
          if (ageMs(dir) > 30_000) teardownRunSync(holder, slot);
          continue;
        }
        if (!o.persistent && !ownerAlive(o)) teardownRunSync(holder, slot);
        else break;
        continue;
      }
      writeFileSync(join(dir, 'run'), owner.runId);
      if (foreignRoutes(slotOctet(slot)).length > 0) {
        rmSync(dir, { recursive: true, force: true });
        break;
      }
      owner.slot = slot;
      writeOwner(owner);
      return slot;
    }
  }
  throw new LabError(`no free lab slot (1..${MAX_SLOT}) under ${slotsDir()}; try "npm run lab -- sweep"`);
}

/** Namespaces in the system whose name marks them as a lab's, grouped by run id. */
export function labNamespaces(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const r = runSync('ip', ['netns', 'list']);
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NAME_RE.exec(name);
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push(name);
    out.set(m[1]!, list);
  }
  return out;
}

/** Root-namespace links whose name marks them as a lab's, grouped by run id. */
export function labLinks(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const r = runSync('ip', ['-o', 'link', 'show']);
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    const name = m?.[1];
    if (!name) continue;
    const n = NAME_RE.exec(name);
    if (!n) continue;
    const list = out.get(n[1]!) ?? [];
    list.push(name);
    out.set(n[1]!, list);
  }
  return out;
}

/** Pids of processes whose network namespace is `ns`. */
export function nsPids(ns: string): number[] {
  const r = runSync('ip', ['netns', 'pids', ns]);
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
}

/**
 * Removes everything of a run, synchronously (usable from an 'exit' handler): kills every process in its
 * namespaces (SIGTERM, then SIGKILL), deletes the namespaces (which removes their veths), any root veth left,
 * the guard route of its slot, the slot lock and the run directory. Never throws; returns what it could not remove.
 */
export function teardownRunSync(runId: string, slot?: number, graceMs = 2000): string[] {
  const problems: string[] = [];
  const nss = labNamespaces().get(runId) ?? [];
  const pids = [...new Set(nss.flatMap(nsPids))];
  const killed = killSync(pids, graceMs);
  if (killed.some(pidAlive)) problems.push(`processes would not die: ${killed.join(' ')}`);
  for (const ns of nss) {
    const r = runSync('ip', ['netns', 'del', ns]);
    if (r.code !== 0) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  for (const link of labLinks().get(runId) ?? []) runSync('ip', ['link', 'del', link]);
  const owner = readOwner(runId);
  const s = slot ?? owner?.slot;
  if (s !== undefined && slotRun(s) === runId) {
    runSync('ip', ['route', 'del', 'unreachable', `10.${slotOctet(s)}.0.0/16`]);
    rmSync(join(slotsDir(), String(s)), { recursive: true, force: true });
  }
  rmSync(runDir(runId), { recursive: true, force: true });
  return problems;
}

export interface RunStatus {
  runId: string;
  owner?: OwnerInfo;
  alive: boolean;
  namespaces: string[];
  links: string[];
  pids: number[];
}

/** Every run known from state dirs, namespaces or links. */
export function listRuns(): RunStatus[] {
  const ids = new Set<string>();
  if (existsSync(runsDir())) for (const d of readdirSync(runsDir())) if (/^[0-9a-f]{6}$/.test(d)) ids.add(d);
  const nss = labNamespaces();
  const links = labLinks();
  for (const k of nss.keys()) ids.add(k);
  for (const k of links.keys()) ids.add(k);
  return [...ids].sort().map((runId) => {
    const owner = readOwner(runId);
    const namespaces = nss.get(runId) ?? [];
    return {
      runId,
      owner,
      alive: owner ? ownerAlive(owner) : false,
      namespaces,
      links: links.get(runId) ?? [],
      pids: namespaces.flatMap(nsPids),
    };
  });
}

/**
 * Removes leftovers of runs whose owner process is dead (or, with `all`, of every run not owned by a live
 * process, including persistent ones; with `force`, of every run at all). Also frees orphaned slots.
 * Returns the run ids removed.
 */
export function sweepStale(opts: { all?: boolean; force?: boolean } = {}): string[] {
  const swept: string[] = [];
  for (const r of listRuns()) {
    if (r.runId === undefined) continue;
    const o = r.owner;
    if (!o) {
      // A run dir being created right now has no owner.json for a moment.
      if (ageMs(runDir(r.runId)) < 30_000 && existsSync(runDir(r.runId))) continue;
    } else if (!opts.force) {
      if (r.alive) continue;
      if (o.persistent && !opts.all) continue;
    }
    teardownRunSync(r.runId, o?.slot);
    swept.push(r.runId);
  }
  if (existsSync(slotsDir())) {
    for (const d of readdirSync(slotsDir())) {
      const slot = Number(d);
      const holder = slotRun(slot);
      const dir = join(slotsDir(), d);
      if (holder !== undefined && existsSync(runDir(holder))) continue;
      if (ageMs(dir) < 30_000) continue;
      runSync('ip', ['route', 'del', 'unreachable', `10.${slotOctet(slot)}.0.0/16`]);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return swept;
}
