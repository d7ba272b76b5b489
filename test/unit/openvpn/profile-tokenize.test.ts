import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { splitConfigLines, stripDoubleDash, tokenizeLine } from '../../../src/openvpn/tokenize.js';

function words(line: string): string[] {
  const r = tokenizeLine(line);
  if (!r.ok) throw new Error(`unexpected error: ${r.error}`);
  return r.words;
}
function error(line: string): string {
  const r = tokenizeLine(line);
  assert.equal(r.ok, false, `expected an error for ${JSON.stringify(line)}`);
  return (r as { error: string }).error;
}

describe('tokenizeLine (OpenVPN parse_line semantics)', () => {
  test('whitespace separated words, tabs, CR', () => {
    assert.deepEqual(words('remote  vpn.example.com\t1194 udp\r'), ['remote', 'vpn.example.com', '1194', 'udp']);
    assert.deepEqual(words('   '), []);
    assert.deepEqual(words(''), []);
  });
  test('comments: # and ; at the start of a word', () => {
    assert.deepEqual(words('# comment'), []);
    assert.deepEqual(words('   ; comment'), []);
    assert.deepEqual(words('remote a 1194 # trailing comment'), ['remote', 'a', '1194']);
    assert.deepEqual(words('auth-user-pass creds#1.txt'), ['auth-user-pass', 'creds#1.txt']);
    assert.deepEqual(words('x "a # not a comment"'), ['x', 'a # not a comment']);
  });
  test('double quotes group words and allow \\" and \\\\', () => {
    assert.deepEqual(words('pull-filter ignore "dhcp-option DNS6"'), ['pull-filter', 'ignore', 'dhcp-option DNS6']);
    assert.deepEqual(words('x "say \\"hi\\""'), ['x', 'say "hi"']);
    assert.deepEqual(words('x "c:\\\\dir\\\\file"'), ['x', 'c:\\dir\\file']);
    assert.deepEqual(words('x ""'), ['x', '']);
  });
  test('a closing quote ends the word; a quote inside a bare word is literal', () => {
    assert.deepEqual(words('x "a"b'), ['x', 'a', 'b']);
    assert.deepEqual(words('x a"b'), ['x', 'a"b']);
  });
  test('single quotes are literal (no escapes)', () => {
    assert.deepEqual(words("x 'a \\ b' c"), ['x', 'a \\ b', 'c']);
    assert.deepEqual(words("x 'it\"s'"), ['x', 'it"s']);
  });
  test('backslash escapes outside quotes', () => {
    assert.deepEqual(words('x a\\ b'), ['x', 'a b']);
    assert.deepEqual(words('x a\\\\b'), ['x', 'a\\b']);
    assert.deepEqual(words('x \\"q'), ['x', '"q']);
  });
  test('bad backslash usage is an error', () => {
    assert.match(error('cd c:\\openvpn'), /backslash/);
    assert.match(error('x "a\\nb"'), /backslash/);
  });
  test('unterminated quotes are errors', () => {
    assert.match(error('x "abc'), /closing quotation/);
    assert.match(error("x 'abc"), /closing single quotation/);
    assert.match(error('x abc\\'), /ends inside a word/);
  });
  test('a NUL ends the line', () => {
    assert.deepEqual(words('a b\0c d'), ['a', 'b']);
  });
  test('stripDoubleDash', () => {
    assert.equal(stripDoubleDash('--remote'), 'remote');
    assert.equal(stripDoubleDash('--'), '--');
    assert.equal(stripDoubleDash('-x'), '-x');
  });
  test('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const r = tokenizeLine(s);
        if (r.ok) for (const w of r.words) assert.equal(typeof w, 'string');
      }),
      { numRuns: 2000 },
    );
  });
  test('words without special characters survive a round trip through quoting', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 6 }), (ws) => {
        const quoted = ws.map((w) => '"' + w.replace(/\0/g, '').replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"').join(' ');
        assert.deepEqual(words(quoted), ws.map((w) => w.replace(/\0/g, '')));
      }),
    );
  });
});

describe('splitConfigLines', () => {
  test('BOM, CRLF, final newline', () => {
    assert.deepEqual(splitConfigLines('\ufeffclient\r\ndev tun\r\n'), ['client', 'dev tun']);
    assert.deepEqual(splitConfigLines('a\n\nb'), ['a', '', 'b']);
    assert.deepEqual(splitConfigLines('a\r\r\n'), ['a\r']);
  });
});
