import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { wantsMainThreadSweeping } from '../../../src/cli/gc-tuning.js';

test('gc tuning: only on few cores, and never over an explicit user choice', () => {
  assert.equal(wantsMainThreadSweeping(2, [], undefined), true);
  assert.equal(wantsMainThreadSweeping(4, ['--enable-source-maps'], ''), true);
  assert.equal(wantsMainThreadSweeping(8, [], undefined), false);
  assert.equal(wantsMainThreadSweeping(2, ['--concurrent-array-buffer-sweeping'], undefined), false);
  assert.equal(wantsMainThreadSweeping(2, ['--single-threaded-gc'], undefined), false);
  assert.equal(wantsMainThreadSweeping(2, [], '--max-old-space-size=100 --concurrent_array_buffer_sweeping'), false);
});

test('gc tuning: the flag set at run time survives heavy ArrayBuffer churn and full GCs', () => {
  // A child process, so this test runner's own V8 flags are not touched.
  const script = `
    const v8 = require('node:v8');
    v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');
    let keep = [];
    for (let i = 0; i < 200000; i++) {
      const b = new Uint8Array(1500);
      b[0] = i & 255;
      if (i % 1000 === 0) keep.push(b);
      if (i % 50000 === 0) global.gc();
    }
    process.stdout.write(String(keep.length));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '200');
});
