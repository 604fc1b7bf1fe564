/**
 * `--san` parsing (issue #12): a bare IP address is an iPAddress, not `DNS:10.1.2.3`; prefixes
 * are recognised case-insensitively; anything ambiguous is refused (the CLI turns it into a
 * usage error, exit 2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSanSpec } from '../../src/pkix/extensions.js';

test('SAN spec: bare IPv4/IPv6 are IP addresses, bare names DNS, prefixes as given', () => {
  assert.deepEqual(parseSanSpec('dev9.example,10.1.2.3,2001:db8::7,::1'), [
    { type: 'dns', value: 'dev9.example' },
    { type: 'ip', value: '10.1.2.3' },
    { type: 'ip', value: '2001:db8::7' },
    { type: 'ip', value: '::1' },
  ]);
  assert.deepEqual(
    parseSanSpec('DNS:a.example,Ip:10.0.0.9,EMAIL:x@y.example,uri:https://d.example/x,*.w.example'),
    [
      { type: 'dns', value: 'a.example' },
      { type: 'ip', value: '10.0.0.9' },
      { type: 'email', value: 'x@y.example' },
      { type: 'uri', value: 'https://d.example/x' },
      { type: 'dns', value: '*.w.example' },
    ],
  );
});

test('SAN spec: unknown prefixes, bare e-mail addresses and non-names are refused', () => {
  assert.throws(() => parseSanSpec('upn:x@y.example'), /unknown type 'upn:'.*dns:, ip:, email: or uri:/);
  assert.throws(() => parseSanSpec('x@y.example'), /email:x@y\.example/);
  assert.throws(() => parseSanSpec('has space.example'), /neither a DNS name nor an IP address/);
  assert.throws(() => parseSanSpec('10.1.2.300x:'), /neither|unknown/);
  assert.throws(() => parseSanSpec('ip:10.1.2.300'), /bad IP address/);
});
