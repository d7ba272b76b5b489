/**
 * Where a two-factor response can come from outside the program: a command that prints it (a password
 * manager, `oathtool --totp …`), or the terminal. Both return OtpSource-shaped functions.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { VpnError } from '../errors.js';

export interface OtpPromptInfo {
  kind: 'static' | 'crv1' | 'crtext';
  text: string;
  echo: boolean;
}

/** Output larger than this from --otp-command is refused (a code is a line). */
const MAX_OUTPUT = 4096;

/**
 * Runs `command` with /bin/sh and answers with the first line it prints. The challenge is in the environment
 * as VPNPROXY_CHALLENGE (its text) and VPNPROXY_CHALLENGE_KIND ('static' or 'crv1'). A non-zero exit, no
 * output, or more than `timeoutMs` is a USAGE error that quotes the command's stderr.
 */
export function commandOtp(command: string, opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): (p: OtpPromptInfo) => Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return (p) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...(opts.env ?? process.env), VPNPROXY_CHALLENGE: p.text, VPNPROXY_CHALLENGE_KIND: p.kind },
      });
      let out = '';
      let err = '';
      let done = false;
      const finish = (e: VpnError | undefined, v?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(v!);
      };
      const timer = setTimeout(() => {
        child.kill('SIGTERM');
        finish(new VpnError('USAGE', `--otp-command did not answer within ${Math.round(timeoutMs / 1000)} s: ${command}`));
      }, timeoutMs);
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        out += d;
        if (out.length > MAX_OUTPUT) {
          child.kill('SIGTERM');
          finish(new VpnError('USAGE', `--otp-command printed more than ${MAX_OUTPUT} bytes; it should print the code on one line`));
        }
      });
      child.stderr.on('data', (d: string) => {
        if (err.length < MAX_OUTPUT) err += d;
      });
      child.on('error', (e) => finish(new VpnError('USAGE', `cannot run --otp-command: ${e.message}`)));
      child.on('close', (code, signal) => {
        if (code !== 0) {
          const why = signal ? `was killed by ${signal}` : `exited with ${code}`;
          finish(new VpnError('USAGE', `--otp-command ${why}${err.trim() ? `: ${err.trim().split('\n')[0]}` : ''}`));
          return;
        }
        const line = out.split(/\r?\n/).find((l) => l.trim() !== '');
        if (line === undefined) finish(new VpnError('USAGE', '--otp-command printed nothing; it should print the code'));
        else finish(undefined, line.trim());
      });
    });
}

/**
 * Asks on the terminal (stderr for the question, stdin for the answer), echoing or not as the challenge says.
 * Only for a TTY on stdin; callers check that first.
 */
export function terminalOtp(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): (p: OtpPromptInfo) => Promise<string> {
  return (p) =>
    new Promise<string>((resolve, reject) => {
      let muted = false;
      // A Writable in front of the terminal so that, with echo off, what is typed is not shown.
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (!muted) output.write(chunk);
          cb();
        },
      });
      const rl = createInterface({ input, output: sink, terminal: true });
      let answered = false;
      // The terminal is in raw mode while we ask: Ctrl-C reaches readline, not the process. Pass it on.
      rl.on('SIGINT', () => {
        rl.close();
        process.kill(process.pid, 'SIGINT');
      });
      rl.on('close', () => {
        if (!answered) reject(new VpnError('USAGE', 'no answer to the two-factor challenge: the terminal was closed'));
      });
      rl.question(`${p.text.replace(/[\x00-\x1f\x7f]/g, ' ')} `, (a) => {
        answered = true;
        if (muted) output.write('\n');
        rl.close();
        resolve(a);
      });
      muted = !p.echo;
    });
}
