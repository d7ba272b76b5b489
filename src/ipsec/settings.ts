/**
 * The generic strongSwan settings syntax (strongswan.conf(5), used by swanctl.conf), written from its
 * documentation and observed behaviour:
 *
 * - `name { ... }` sections, nested to any depth; a section may be repeated and then extends the first
 *   one (its keys replace earlier values, its subsections merge);
 * - `key = value`: the value runs to the end of the line, a `#` or a `}`; runs of blanks between value
 *   words collapse to one space; an empty value (`key =`) clears the key, so its default applies;
 * - double-quoted strings inside values keep blanks, `#` and `}`, may span lines, and take the escapes
 *   `\n`, `\r`, `\t`, backslash-newline (joins lines) and `\X` for any other X;
 * - a key given twice in one section: the later value wins (strongSwan replaces it);
 * - `#` starts a comment to the end of the line;
 * - `include PATTERN` (glob, relative to the directory of the file that has the statement) parses the
 *   matching files, in sorted order, into the section holding the statement;
 * - `name : other.section, more { ... }` inherits the keys and subsections of the referenced sections
 *   (absolute dotted names); the section's own settings win.
 *
 * The result is a tree where every section and value remembers the file and line it came from, so the
 * layers above report errors as `file:line: what is wrong`. Malformed input throws
 * VpnError('PROFILE_SYNTAX'), an unreadable include VpnError('PROFILE_FILE'); nothing else is thrown.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import nodePath from 'node:path';
import { VpnError } from '../errors.js';
import { fileErrorText } from '../util/fs-error.js';

/** A `key = value` setting. `value` is '' for an empty assignment. */
export interface SettingsValue {
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

/** A section (the root has the name ''). Maps keep the order of first appearance. */
export interface SettingsSection {
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly keys: Map<string, SettingsValue>;
  readonly sections: Map<string, SettingsSection>;
}

/** A file matched by an include pattern, with its text. */
export interface IncludedFile {
  readonly file: string;
  readonly text: string;
}

/**
 * Resolves an include statement: `pattern` as written, `fromFile` the file holding the statement.
 * Returns the matching files in the order to parse them. Throws (anything) when a file cannot be read;
 * the parser turns that into PROFILE_FILE with file:line.
 */
export type IncludeReader = (pattern: string, fromFile: string) => IncludedFile[];

export interface ParseSettingsOptions {
  /** How `include` is resolved; default: the file system (fsIncludeReader). */
  readInclude?: IncludeReader;
  /** Collects non-fatal remarks (`file:line: ...`), e.g. an include pattern that matched nothing. */
  warnings?: string[];
}

const MAX_DEPTH = 64;
const MAX_INCLUDE_DEPTH = 16;

/** Messages stay on one line: control characters (from quoted values, say) are shown escaped. */
export function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

export function settingsError(file: string, line: number, msg: string): VpnError {
  return new VpnError('PROFILE_SYNTAX', `${file}:${line}: ${oneLine(msg)}`);
}

interface MutableSection {
  name: string;
  file: string;
  line: number;
  keys: Map<string, SettingsValue>;
  sections: Map<string, MutableSection>;
  refs?: { names: string[]; file: string; line: number };
}

function newSection(name: string, file: string, line: number): MutableSection {
  return { name, file, line, keys: new Map(), sections: new Map() };
}

const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\r';
/** Characters that end a section name or key. */
const NAME_STOP = new Set([' ', '\t', '\r', '\n', '#', '{', '}', '=', '"', ':', ',']);
/** Characters that end an unquoted value word. */
const VALUE_STOP = new Set([' ', '\t', '\r', '\n', '#', '}', '"']);

class Lexer {
  pos = 0;
  line = 1;
  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    if (text.charCodeAt(0) === 0xfeff) this.pos = 1;
  }
  eof(): boolean {
    return this.pos >= this.text.length;
  }
  peek(off = 0): string {
    return this.text.charAt(this.pos + off);
  }
  next(): string {
    const c = this.text.charAt(this.pos++);
    if (c === '\n') this.line++;
    return c;
  }
  err(msg: string, line = this.line): VpnError {
    return settingsError(this.file, line, msg);
  }
  skipBlanks(): void {
    while (!this.eof() && isBlank(this.peek())) this.pos++;
  }
  skipComment(): void {
    while (!this.eof() && this.peek() !== '\n') this.pos++;
  }
  /** Blanks, newlines and comments. */
  skipSpace(): void {
    for (;;) {
      const c = this.peek();
      if (c === '' ) return;
      if (isBlank(c) || c === '\n') this.next();
      else if (c === '#') this.skipComment();
      else return;
    }
  }
  readName(): string {
    let s = '';
    for (;;) {
      const c = this.peek();
      if (c === '') break;
      if (c === ':' && this.peek(1) === ':') {
        s += ':';
        this.pos += 2;
        continue;
      }
      if (NAME_STOP.has(c)) break;
      s += c;
      this.pos++;
    }
    return s;
  }
  /** A double-quoted string; the opening quote is the current character. */
  readQuoted(): string {
    const startLine = this.line;
    this.pos++;
    let s = '';
    for (;;) {
      if (this.eof()) throw this.err('unterminated string (missing closing ")', startLine);
      const c = this.next();
      if (c === '"') return s;
      if (c === '\r') continue;
      if (c !== '\\') {
        s += c;
        continue;
      }
      if (this.eof()) throw this.err('unterminated string (missing closing ")', startLine);
      const e = this.next();
      if (e === 'n') s += '\n';
      else if (e === 'r') s += '\r';
      else if (e === 't') s += '\t';
      else if (e === '\n') continue;
      else if (e === '\r' && this.peek() === '\n') this.next();
      else s += e;
    }
  }
}

function describe(c: string): string {
  if (c === '\n') return 'end of line';
  if (c === '') return 'end of file';
  return `'${c}'`;
}

class SettingsParser {
  private readonly readInclude: IncludeReader;
  private readonly warnings: string[];
  private readonly includeStack: string[] = [];

  constructor(opts: ParseSettingsOptions) {
    this.readInclude = opts.readInclude ?? fsIncludeReader;
    this.warnings = opts.warnings ?? [];
  }

  parseFile(text: string, file: string, into: MutableSection, depth: number): void {
    const lx = new Lexer(text, file);
    this.parseBody(lx, into, depth, undefined);
  }

  /** Statements until EOF (open === undefined) or the `}` closing `open`. */
  private parseBody(lx: Lexer, sec: MutableSection, depth: number, open: { name: string; line: number } | undefined): void {
    for (;;) {
      lx.skipSpace();
      const c = lx.peek();
      if (c === '') {
        if (open) throw lx.err(`section '${open.name}' opened here is never closed (missing '}')`, open.line);
        return;
      }
      if (c === '}') {
        if (!open) throw lx.err(`unexpected '}' (no section is open)`);
        lx.next();
        return;
      }
      if (c === '{') throw lx.err(`unexpected '{' (a section needs a name)`);
      if (c === '=') throw lx.err(`unexpected '=' (a setting needs a name)`);
      if (c === '"') throw lx.err('unexpected string (quotes are only allowed in values)');
      if (c === ':' || c === ',') throw lx.err(`unexpected '${c}'`);
      const line = lx.line;
      const name = lx.readName();
      if (name === 'include' && isBlank(lx.peek())) {
        const save = lx.pos;
        lx.skipBlanks();
        if (lx.peek() !== '=') {
          this.include(lx, sec, depth, line);
          continue;
        }
        lx.pos = save;
      }
      lx.skipBlanks();
      const d = lx.peek();
      if (d === '=') {
        lx.next();
        sec.keys.set(name, { value: this.readValue(lx), file: lx.file, line });
        continue;
      }
      let refs: string[] | undefined;
      if (d === ':') {
        lx.next();
        refs = this.readRefs(lx, name, line);
      } else if (d === '\n' || d === '#') {
        lx.skipSpace();
        if (lx.peek() !== '{') throw lx.err(`'${name}' must be followed by '=' (a setting) or '{' (a section)`, line);
      } else if (d !== '{') {
        throw lx.err(`expected '=' or '{' after '${name}', found ${describe(d)}`, line);
      }
      lx.next(); // '{'
      if (depth >= MAX_DEPTH) throw lx.err(`sections nested more than ${MAX_DEPTH} deep`, line);
      let child = sec.sections.get(name);
      if (!child) {
        child = newSection(name, lx.file, line);
        sec.sections.set(name, child);
      }
      if (refs) child.refs = { names: [...(child.refs?.names ?? []), ...refs], file: lx.file, line };
      this.parseBody(lx, child, depth + 1, { name, line });
    }
  }

  private readValue(lx: Lexer): string {
    const parts: string[] = [];
    for (;;) {
      lx.skipBlanks();
      const c = lx.peek();
      if (c === '' || c === '\n' || c === '#' || c === '}') break;
      if (c === '"') {
        parts.push(lx.readQuoted());
        continue;
      }
      let s = '';
      while (!lx.eof() && !VALUE_STOP.has(lx.peek())) s += lx.text.charAt(lx.pos++);
      parts.push(s);
    }
    return parts.join(' ');
  }

  /** `a.b, c.d {` after the ':'; stops before the '{'. */
  private readRefs(lx: Lexer, name: string, line: number): string[] {
    const refs: string[] = [];
    for (;;) {
      lx.skipSpace();
      let ref = '';
      while (!lx.eof() && !NAME_STOP.has(lx.peek())) ref += lx.text.charAt(lx.pos++);
      if (ref === '') throw lx.err(`section '${name}': expected the name of a section to inherit from after ':' or ','`, line);
      refs.push(ref);
      lx.skipSpace();
      const c = lx.peek();
      if (c === ',') {
        lx.next();
        continue;
      }
      if (c === '{') return refs;
      throw lx.err(`section '${name}': expected ',' or '{' after '${ref}', found ${describe(c)}`, line);
    }
  }

  private include(lx: Lexer, sec: MutableSection, depth: number, line: number): void {
    let pattern = '';
    if (lx.peek() === '"') {
      pattern = lx.readQuoted();
    } else {
      for (;;) {
        const c = lx.peek();
        if (c === '' || c === '\n' || c === '#' || c === '}' || isBlank(c)) break;
        if (c === '\\' && ['"', '#', '}', ' '].includes(lx.peek(1))) {
          pattern += lx.peek(1);
          lx.pos += 2;
          continue;
        }
        pattern += c;
        lx.pos++;
      }
    }
    lx.skipBlanks();
    const after = lx.peek();
    if (after !== '' && after !== '\n' && after !== '#' && after !== '}') {
      throw lx.err('include takes exactly one file name or pattern (quote names with spaces)', line);
    }
    if (pattern === '') {
      this.warnings.push(`${lx.file}:${line}: include without a file name ignored`);
      return;
    }
    if (this.includeStack.length >= MAX_INCLUDE_DEPTH) {
      throw lx.err(`includes nested more than ${MAX_INCLUDE_DEPTH} deep (include loop?)`, line);
    }
    let files: IncludedFile[];
    try {
      files = this.readInclude(pattern, lx.file);
    } catch (err) {
      throw new VpnError('PROFILE_FILE', oneLine(`${lx.file}:${line}: include ${pattern}: ${fileErrorText(err)}`), { cause: err });
    }
    if (files.length === 0) {
      this.warnings.push(oneLine(`${lx.file}:${line}: include ${pattern}: no file matches`));
      return;
    }
    for (const f of files) {
      if (this.includeStack.includes(f.file) || f.file === lx.file) {
        throw lx.err(`include ${pattern}: ${f.file} includes itself`, line);
      }
      this.includeStack.push(lx.file);
      try {
        this.parseFile(f.text, f.file, sec, depth);
      } finally {
        this.includeStack.pop();
      }
    }
  }
}


// ---------- references (`name : other { ... }`) ----------

function lookupAbs(root: MutableSection, abs: string): MutableSection | undefined {
  let cur: MutableSection | undefined = root;
  for (const part of abs.split('.')) {
    cur = cur.sections.get(part);
    if (!cur) return undefined;
  }
  return cur;
}

/** Own settings first, then those of each referenced section (resolved), own values winning. */
function resolveRefs(root: MutableSection): SettingsSection {
  const done = new Map<MutableSection, SettingsSection>();
  const active = new Set<MutableSection>();

  const merge = (into: { keys: Map<string, SettingsValue>; sections: Map<string, SettingsSection> }, from: SettingsSection): void => {
    for (const [k, v] of from.keys) if (!into.keys.has(k)) into.keys.set(k, v);
    for (const [n, s] of from.sections) {
      const mine = into.sections.get(n);
      if (!mine) into.sections.set(n, s);
      else {
        const copy: SettingsSection = { name: mine.name, file: mine.file, line: mine.line, keys: new Map(mine.keys), sections: new Map(mine.sections) };
        merge(copy, s);
        into.sections.set(n, copy);
      }
    }
  };

  const resolve = (sec: MutableSection): SettingsSection => {
    const have = done.get(sec);
    if (have) return have;
    if (active.has(sec)) {
      const at = sec.refs ?? sec;
      throw settingsError(at.file, at.line, `section '${sec.name}' inherits from itself (circular reference)`);
    }
    active.add(sec);
    const out: SettingsSection = { name: sec.name, file: sec.file, line: sec.line, keys: new Map(sec.keys), sections: new Map() };
    for (const [n, s] of sec.sections) out.sections.set(n, resolve(s));
    if (sec.refs) {
      for (const ref of sec.refs.names) {
        const target = lookupAbs(root, ref);
        if (!target) throw settingsError(sec.refs.file, sec.refs.line, `section '${sec.name}' inherits from '${ref}', which does not exist`);
        merge(out, resolve(target));
      }
    }
    active.delete(sec);
    done.set(sec, out);
    return out;
  };
  return resolve(root);
}

/**
 * Parse settings text. `file` names the text in messages and anchors relative includes.
 * Throws VpnError PROFILE_SYNTAX / PROFILE_FILE only.
 */
export function parseSettings(text: string, file: string, opts: ParseSettingsOptions = {}): SettingsSection {
  const root = newSection('', file, 1);
  const parser = new SettingsParser(opts);
  try {
    parser.parseFile(text, file, root, 0);
    return resolveRefs(root);
  } catch (err) {
    if (err instanceof VpnError) throw err;
    throw new VpnError('PROFILE_SYNTAX', `${file}:1: cannot parse settings (internal error: ${fileErrorText(err)})`, { cause: err });
  }
}

// ---------- include from the file system ----------

const GLOB_CHARS = /[*?[]/;

/** sh(1)-style wildcard for one path segment: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`; no leading-dot matches. */
function segmentRegex(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, end);
      let neg = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        neg = true;
        body = body.slice(1);
      }
      re += `[${neg ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => '\\' + m)}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, (m) => '\\' + m);
  }
  return new RegExp(re + '$');
}

function globSegments(base: string, segs: string[]): string[] {
  if (segs.length === 0) return [base];
  const [seg, ...rest] = segs as [string, ...string[]];
  if (!GLOB_CHARS.test(seg)) return globSegments(nodePath.join(base, seg), rest);
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return [];
  }
  const re = segmentRegex(seg);
  const out: string[] = [];
  for (const e of entries.sort()) {
    if (e.startsWith('.') && !seg.startsWith('.')) continue;
    if (!re.test(e)) continue;
    const p = nodePath.join(base, e);
    if (rest.length > 0) out.push(...globSegments(p, rest));
    else out.push(p);
  }
  return out;
}

/** Expand a pattern relative to `fromFile`'s directory; a pattern without wildcards is returned as is. */
export function expandIncludePattern(pattern: string, fromFile: string): { paths: string[]; glob: boolean } {
  const abs = nodePath.isAbsolute(pattern) ? pattern : nodePath.join(nodePath.dirname(nodePath.resolve(fromFile)), pattern);
  if (!GLOB_CHARS.test(abs)) return { paths: [abs], glob: false };
  const { root } = nodePath.parse(abs);
  const segs = abs.slice(root.length).split(nodePath.sep).filter((s) => s !== '');
  return { paths: globSegments(root, segs), glob: true };
}

/**
 * The default include reader: wildcards expand to the matching regular files (sorted; none is fine),
 * a plain file name must exist.
 */
export const fsIncludeReader: IncludeReader = (pattern, fromFile) => {
  const { paths, glob } = expandIncludePattern(pattern, fromFile);
  const out: IncludedFile[] = [];
  for (const p of paths) {
    if (glob) {
      try {
        if (!statSync(p).isFile()) continue;
      } catch {
        continue;
      }
    }
    out.push({ file: p, text: readFileSync(p, 'utf8') });
  }
  return out;
};
