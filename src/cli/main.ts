#!/usr/bin/env node
import { VpnError, exitCodeFor } from '../errors.js';
import { Logger } from '../util/log.js';
import { VERSION } from '../version.js';
import { HELP, parseCommandLine } from './args.js';
import { runVpn } from './run-command.js';
import { tuneGc } from './gc-tuning.js';

async function main(argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseCommandLine(argv);
  } catch (e) {
    process.stderr.write(`vpnproxy: ${(e as Error).message}\n`);
    return exitCodeFor(e);
  }
  if (cmd.command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd.command === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const log = new Logger(cmd.logLevel, cmd.logFormat);
  if (tuneGc()) log.debug('few cores: array buffers are swept on the main thread (--no-concurrent-array-buffer-sweeping)');
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    log.info(`${sig}: closing the tunnel`);
    ac.abort();
    // Never hang on shutdown: the exit notification has two seconds.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runVpn(cmd, log, ac.signal);
  } catch (e) {
    const err = e instanceof VpnError ? e : new VpnError('INTERNAL', (e as Error)?.stack ?? String(e));
    process.stderr.write(`vpnproxy: error [${err.code}]: ${err.message}\n`);
    return exitCodeFor(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Everything is closed by now; do not let a straggling handle keep the process alive.
  setTimeout(() => process.exit(code), 500).unref();
});
