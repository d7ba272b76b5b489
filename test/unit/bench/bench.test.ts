import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BENCH_PROTOCOLS, defaultOptions, parseBenchArgs, SCENARIOS } from '../../../bench/args.js';
import { formatProfileSummary, summarizeProfile, type CpuProfile } from '../../../bench/profile-summary.js';
import { parseReadyLine } from '../../../bench/ready-line.js';
import { fmt, fmtSummary, formatTable, groups, markdownTable, rows, targetText, targetVerdict, toMarkdown, type BenchResult, type Metric } from '../../../bench/report.js';
import { cpuSecPerGB, mbitPerSec, median, percentile, ratio, summarize } from '../../../bench/stats.js';

describe('bench statistics', () => {
  test('median, min, max of odd and even samples, NaN dropped', () => {
    assert.deepEqual(summarize([3, 1, 2]), { n: 3, median: 2, min: 1, max: 3 });
    assert.deepEqual(summarize([4, 1, 3, 2]), { n: 4, median: 2.5, min: 1, max: 4 });
    assert.deepEqual(summarize([NaN, 5]), { n: 1, median: 5, min: 5, max: 5 });
    const e = summarize([]);
    assert.equal(e.n, 0);
    assert.ok(Number.isNaN(e.median) && Number.isNaN(e.min));
  });

  test('percentiles interpolate between ranks (type 7)', () => {
    const xs = Array.from({ length: 101 }, (_, i) => 100 - i); // 0..100 shuffled order
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
    assert.equal(percentile([10, 20], 99), 19.9);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile([1], 101), RangeError);
    assert.equal(median([5, 1, 9]), 5);
  });

  test('units: Mbit/s is decimal, CPU per GB, ratio guards', () => {
    assert.equal(mbitPerSec(200e6, 4), 400);
    assert.ok(Number.isNaN(mbitPerSec(1, 0)));
    assert.equal(cpuSecPerGB(3, 200e6), 15);
    assert.equal(ratio(300, 600), 0.5);
    assert.ok(Number.isNaN(ratio(1, 0)));
    assert.ok(Number.isNaN(ratio(NaN, 1)));
  });
});

describe('bench arguments', () => {
  test('defaults: full run is 3 rounds of 200 MB, quick is smaller', () => {
    const full = parseBenchArgs([]);
    assert.equal(full.rounds, 3);
    assert.equal(full.bulkBytes, 200e6);
    assert.equal(full.holdConnections, 1000);
    assert.deepEqual(full.only, [...SCENARIOS]);
    assert.deepEqual(full.protocols, [...BENCH_PROTOCOLS]);
    assert.equal(full.soakBytes, 10e9, 'the soak moves 10 GB');
    assert.equal(full.outDir, 'bench/results');
    const q = parseBenchArgs(['--quick']);
    assert.equal(q.quick, true);
    assert.ok(q.bulkBytes < full.bulkBytes && q.rpsSeconds < full.rpsSeconds);
    assert.deepEqual(parseBenchArgs(['--quick']), defaultOptions(true));
  });

  test('values, --x=y form, --size carries to parallel and loss unless given', () => {
    const o = parseBenchArgs(['--rounds', '5', '--size=50', '--loss-size', '10', '--only', 'download,cold', '--no-write']);
    assert.equal(o.rounds, 5);
    assert.equal(o.bulkBytes, 50e6);
    assert.equal(o.parallelBytes, 50e6);
    assert.equal(o.lossBytes, 10e6);
    assert.deepEqual(o.only, ['download', 'cold']);
    assert.equal(o.outDir, undefined);
    const p = parseBenchArgs(['--protocols', 'ipsec', '--soak-size', '2.5', '--only', 'soak,datapath']);
    assert.deepEqual(p.protocols, ['ipsec']);
    assert.equal(p.soakBytes, 2.5e9);
    assert.deepEqual(p.only, ['soak', 'datapath']);
    assert.equal(parseBenchArgs(['--help']).help, true);
  });

  test('bad arguments are one-line errors', () => {
    assert.throws(() => parseBenchArgs(['--rounds', '0']), /--rounds 0/);
    assert.throws(() => parseBenchArgs(['--rounds']), /needs a value/);
    assert.throws(() => parseBenchArgs(['--only', 'download,bogus']), /unknown scenario bogus/);
    assert.throws(() => parseBenchArgs(['--frobnicate']), /unknown option --frobnicate/);
    assert.throws(() => parseBenchArgs(['--loss', '0.9']), /--loss/);
    assert.throws(() => parseBenchArgs(['--protocols', 'openvpn,wireguard']), /unknown protocol wireguard/);
    assert.throws(() => parseBenchArgs(['--protocols', ',']), /--protocols: none given/);
  });
});

describe('bench ready line', () => {
  test('finds every listener of the CLI ready line', () => {
    const r = parseReadyLine('vpnproxy: ready: http-proxy 127.0.0.1:41234, socks-proxy 127.0.0.1:1080, status [::1]:9090');
    assert.deepEqual(r?.listeners['http-proxy'], { host: '127.0.0.1', port: 41234 });
    assert.deepEqual(r?.listeners['socks-proxy'], { host: '127.0.0.1', port: 1080 });
    assert.deepEqual(r?.listeners.status, { host: '::1', port: 9090 });
    assert.equal(parseReadyLine('vpnproxy: connected to 10.0.0.1:1194'), undefined);
    assert.deepEqual(parseReadyLine('vpnproxy: ready: tunnel up')?.listeners, {});
  });
});

describe('bench report', () => {
  const metrics: Metric[] = [
    { id: 'download', label: 'download, 1 connection', unit: 'Mbit/s', better: 'higher', ours: [300, 320, 310], native: [600, 580, 620] },
    { id: 'holdErrors', label: 'held | errors', unit: 'count', better: 'zero', ours: [0], native: null },
  ];

  test('numbers keep about three significant digits', () => {
    assert.equal(fmt(1234.5), '1235');
    assert.equal(fmt(12.345), '12.3');
    assert.equal(fmt(1.2345), '1.23');
    assert.equal(fmt(0.01234), '0.012');
    assert.equal(fmt(0), '0');
    assert.equal(fmt(NaN), '-');
    assert.equal(fmtSummary(summarize([1, 2, 3])), '2.00 (1.00-3.00)');
    assert.equal(fmtSummary(summarize([5])), '5.00');
    assert.equal(fmtSummary(null), '-');
  });

  test('table: aligned columns, medians with ranges, ratio of medians', () => {
    const t = formatTable(metrics).split('\n');
    assert.equal(t.length, 4);
    assert.match(t[0]!, /^metric\s+unit\s+ours median \(min-max\)\s+native median \(min-max\)\s+ours\/native\s+target$/);
    assert.match(t[2]!, /download, 1 connection\s+Mbit\/s ↑\s+310 \(300-320\)\s+600 \(580-620\)\s+0\.52x$/);
    assert.match(t[3]!, /held \| errors\s+count\s+0\s+-\s+-$/);
    // every row as wide as the header up to the last column
    const w = t[1]!.length;
    for (const line of t) assert.ok(line.length <= w + 1, line);
  });

  test('markdown: escaped pipes, right-aligned number columns, machine line', () => {
    const md = markdownTable(metrics);
    assert.match(md, /\|---\|---\|---:\|---:\|---:\|/);
    assert.match(md, /held \\\| errors/);
    const r: BenchResult = {
      schema: 1, startedAt: '2026-01-01T00:00:00.000Z', durationS: 61, quick: false, oursMode: 'CLI',
      machine: { cpu: 'Test CPU', cores: 2, memoryGB: 3.8, kernel: '6.1', node: '20.20.2', openvpn: 'OpenVPN 2.6.14' },
      settings: {}, metrics, notes: ['a note'],
    };
    const doc = toMarkdown(r);
    assert.match(doc, /Test CPU, 2 cores, 3\.8 GB, Linux 6\.1, Node 20\.20\.2, OpenVPN 2\.6\.14/);
    assert.match(doc, /^- a note$/m);
  });
});

describe('bench targets and groups', () => {
  const m = (over: Partial<Metric>): Metric => ({ id: 'x', label: 'x', unit: 'u', better: 'higher', ours: [2], native: [1], ...over });

  test('a ratio target is judged on ours/native medians, a value target on our median', () => {
    const [atLeast, atMost, value, noNative] = rows([
      m({ target: { on: 'ratio', min: 1.5 }, ours: [3, 2.9, 3.1], native: [2, 2, 2] }),
      m({ target: { on: 'ratio', max: 1 }, ours: [2], native: [1] }),
      m({ target: { on: 'value', max: 150 }, ours: [151], native: null }),
      m({ target: { on: 'ratio', min: 1 }, native: null }),
    ]);
    assert.equal(targetVerdict(atLeast!), 'met', '1.5x is at least 1.5x');
    assert.equal(targetVerdict(atMost!), 'missed');
    assert.equal(targetVerdict(value!), 'missed');
    assert.equal(targetVerdict(noNative!), '-', 'nothing to judge a ratio by');
    assert.equal(targetVerdict(rows([m({})])[0]!), '-');
    assert.equal(targetText({ on: 'ratio', min: 1 }), '≥ 1x');
    assert.equal(targetText({ on: 'value', max: 10 }), '≤ 10');
  });

  test('tables split by group, in order, with the verdict in the last column', () => {
    const list = [
      m({ label: 'a', group: 'OpenVPN', target: { on: 'ratio', min: 1 } }),
      m({ label: 'b', group: 'IPsec' }),
      m({ label: 'c', group: 'OpenVPN' }),
    ];
    assert.deepEqual(groups(list).map((g) => [g.name, g.metrics.map((x) => x.label).join('')]), [['OpenVPN', 'ac'], ['IPsec', 'b']]);
    const t = formatTable(list);
    assert.ok(t.indexOf('OpenVPN:') < t.indexOf('IPsec:'));
    assert.match(t, /^a\s.*2\.00x\s+≥ 1x: met$/m);
    const md = markdownTable(list);
    assert.match(md, /### OpenVPN[\s\S]*\| a \|[\s\S]*\| c \|[\s\S]*### IPsec[\s\S]*\| b \|/);
    assert.doesNotMatch(markdownTable([list[0]!]), /###/, 'one group: no heading');
  });
});

describe('bench profile summary', () => {
  test('self time per function from samples, idle left out of the busy share', () => {
    const p: CpuProfile = {
      startTime: 0,
      endTime: 10_000,
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3, 6] },
        { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        { id: 3, callFrame: { functionName: 'seal', url: 'file:///work/main/dist/crypto/aead.js', lineNumber: 9 } },
        { id: 4, callFrame: { functionName: 'seal', url: 'file:///work/main/dist/crypto/aead.js', lineNumber: 9 } },
        { id: 5, callFrame: { functionName: '', url: 'node:internal/dgram', lineNumber: 0 } },
        { id: 6, callFrame: { functionName: 'send', url: 'file:///work/main/dist/transport/udp.js', lineNumber: 144 }, children: [4, 5] },
      ],
      samples: [2, 3, 4, 5, 3, 2],
      timeDeltas: [4000, 1000, 1000, 1000, 1000, 2000],
    };
    const s = summarizeProfile(p, 10);
    assert.equal(s.totalMs, 10);
    assert.equal(s.idleMs, 6);
    assert.equal(s.busyMs, 4);
    assert.equal(s.top[0]!.fn, 'seal');
    assert.equal(s.top[0]!.where, 'dist/crypto/aead.js:10');
    assert.equal(s.top[0]!.ms, 3);
    assert.equal(s.top[0]!.pct, 75);
    assert.equal(s.top[0]!.via, undefined); // our own code: no caller shown
    assert.equal(s.top[1]!.fn, '(anonymous)');
    assert.equal(s.top[1]!.via, 'send (dist/transport/udp.js:145)');
    assert.equal(s.top.length, 2);
    assert.match(formatProfileSummary(s), /75\.0%\s+seal\s+\(dist\/crypto\/aead\.js:10\)/);
  });
});
