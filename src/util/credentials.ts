/**
 * The credentials file the CLI takes with --auth-user-pass, for every protocol: the user name on the first
 * line, the password on the second (as OpenVPN's auth-user-pass file).
 */
import { readFile } from 'node:fs/promises';
import { VpnError } from '../errors.js';

/** Reads FILE; USAGE errors name `flag`. The password is '' when the file has one line. */
export async function readUserPassFile(file: string, flag = '--auth-user-pass'): Promise<{ username: string; password: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new VpnError('USAGE', `cannot read ${flag} file ${file}: ${(e as Error).message}`);
  }
  const [username = '', password = ''] = text.split(/\r?\n/);
  if (!username) throw new VpnError('USAGE', `${flag} file ${file} has no username on its first line`);
  return { username, password };
}
