/**
 * The word splitter OpenVPN uses for config files and for pushed options (`options.c` `parse_line`),
 * re-implemented from its documented behaviour:
 *
 * - words are separated by C `isspace` characters (space, \t, \n, \v, \f, \r);
 * - a word that *starts* with `#` or `;` starts a comment that runs to the end of the line
 *   (so `remote a 1194 # note` works, while `a#b` is one word);
 * - `"double quotes"` group words; `'single quotes'` are literal (no escapes inside);
 * - a backslash escapes the next character everywhere except inside single quotes; only `\\`, `\"` and
 *   `\<space>` are allowed, anything else is an error ("Bad backslash usage");
 * - a closing quote ends the word even without whitespace after it (`"a"b` is two words: `a`, `b`);
 * - `""` is an empty word;
 * - a NUL ends the line (C string semantics).
 *
 * Unlike OpenVPN we do not cap words at 256 characters or lines at 16 words: longer values are kept.
 */

export type TokenizeResult = { ok: true; words: string[] } | { ok: false; error: string };

const S = {
  initial: 0,
  quoted: 1,
  unquoted: 2,
  squoted: 4,
} as const;

/** C isspace() for the ASCII range, plus NUL (OpenVPN's `space()` treats NUL as whitespace). */
export function isCSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\v' || ch === '\f' || ch === '\r' || ch === '\0';
}

/** Split one line into words. Never throws; a malformed line gives `{ ok: false, error }`. */
export function tokenizeLine(line: string): TokenizeResult {
  const nul = line.indexOf('\0');
  if (nul >= 0) line = line.slice(0, nul);
  const words: string[] = [];
  let state: number = S.initial;
  let backslash = false;
  let parm = '';
  // Iterate one past the end: the final (virtual) NUL terminates an unquoted word, as in C.
  for (let i = 0; i <= line.length; i++) {
    const ch = i < line.length ? line[i]! : '\0';
    let out: string | undefined;
    if (!backslash && ch === '\\' && state !== S.squoted) {
      backslash = true;
      continue;
    }
    let done = false;
    if (state === S.initial) {
      if (!isCSpace(ch)) {
        if (ch === ';' || ch === '#') break; // comment (even after a backslash, as in OpenVPN)
        if (!backslash && ch === '"') state = S.quoted;
        else if (!backslash && ch === "'") state = S.squoted;
        else {
          out = ch;
          state = S.unquoted;
        }
      }
    } else if (state === S.unquoted) {
      if (!backslash && isCSpace(ch)) done = true;
      else out = ch;
    } else if (state === S.quoted) {
      if (!backslash && ch === '"') done = true;
      else out = ch;
    } else {
      // single quotes: everything literal until the next '
      if (ch === "'") done = true;
      else out = ch;
    }
    if (backslash && out !== undefined && out !== '\0') {
      if (!(out === '\\' || out === '"' || isCSpace(out))) {
        return { ok: false, error: "bad backslash ('\\') usage: only \\\\, \\\" and \\<space> are escapes (use \\\\ for a literal backslash)" };
      }
    }
    backslash = false;
    if (out !== undefined && out !== '\0') parm += out;
    if (done) {
      words.push(parm);
      parm = '';
      state = S.initial;
    }
  }
  if (state === S.quoted) return { ok: false, error: 'no closing quotation (")' };
  if (state === S.squoted) return { ok: false, error: "no closing single quotation (')" };
  if (state !== S.initial) return { ok: false, error: 'line ends inside a word (trailing backslash?)' };
  return { ok: true, words };
}

/** OpenVPN's `bypass_doubledash`: `--remote` → `remote` (only when something follows the dashes). */
export function stripDoubleDash(word: string): string {
  return word.length >= 3 && word.startsWith('--') ? word.slice(2) : word;
}

/**
 * Split a whole file into lines the way `read_config_file` sees them: a UTF-8 BOM at the very start is
 * dropped, lines end at `\n`, and a trailing `\r` (CRLF files) is removed. Line i of the result is file
 * line i + 1.
 */
export function splitConfigLines(text: string): string[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.endsWith('\r')) lines[i] = l.slice(0, -1);
  }
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
