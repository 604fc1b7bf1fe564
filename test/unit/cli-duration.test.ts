/**
 * Duration options of the CLI (`scepter serve --validity 30s|10m|12h|365d|N`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  durationOpt,
  durationOrAlias,
  formatDuration,
  parseDuration,
  parseOptions,
  UsageError,
} from '../../src/cli/command.js';

test('parseDuration: s, m, h, d suffixes; a bare number is days; nothing else', () => {
  assert.equal(parseDuration('30s'), 30);
  assert.equal(parseDuration('10m'), 600);
  assert.equal(parseDuration('12h'), 43_200);
  assert.equal(parseDuration('365d'), 365 * 86_400);
  assert.equal(parseDuration('365'), 365 * 86_400, 'bare number = days (the --validity-days spelling)');
  assert.equal(parseDuration('30', 1), 30, 'options that always took seconds keep a bare number as seconds');
  assert.equal(parseDuration('2m', 1), 120);
  for (const bad of ['', 's', '1.5h', '-5s', '10 m', '10w', '1e3', '0x10', '99999999999999999999d'])
    assert.throws(() => parseDuration(bad), RangeError, bad);
});

test('formatDuration: the largest exact unit', () => {
  assert.equal(formatDuration(30), '30s');
  assert.equal(formatDuration(90), '90s');
  assert.equal(formatDuration(600), '10m');
  assert.equal(formatDuration(43_200), '12h');
  assert.equal(formatDuration(36_500 * 86_400), '36500d');
});

test('durationOpt: default, bounds and usage errors name the option', () => {
  const opts = { validity: { type: 'string' as const } };
  const at = (v?: string) =>
    durationOpt(parseOptions(v === undefined ? [] : ['--validity', v], opts), 'validity', 99, 10, 86_400);
  assert.equal(at(), 99);
  assert.equal(at('10s'), 10);
  assert.equal(at('1'), 86_400);
  assert.throws(
    () => at('9s'),
    (e: unknown) => e instanceof UsageError && /--validity must be between 10s and 1d/.test(e.message),
  );
  assert.throws(() => at('2'), UsageError);
  assert.throws(
    () => at('soon'),
    (e: unknown) => e instanceof UsageError && /--validity: 'soon' is not a duration/.test(e.message),
  );
});

test('durationOrAlias: new spelling, old whole-number alias in its unit, not both', () => {
  const p = (values: Record<string, string>) => ({ values, positionals: [] });
  assert.equal(
    durationOrAlias(p({ 'pending-ttl': '72h' }), 'pending-ttl', 'pending-ttl-hours', 3600, 1, 1, 1e9),
    259_200,
  );
  assert.equal(
    durationOrAlias(p({ 'pending-ttl-hours': '72' }), 'pending-ttl', 'pending-ttl-hours', 3600, 1, 1, 1e9),
    259_200,
  );
  assert.equal(durationOrAlias(p({}), 'pending-ttl', 'pending-ttl-hours', 3600, 42, 1, 1e9), 42);
  assert.throws(
    () =>
      durationOrAlias(
        p({ 'pending-ttl': '1h', 'pending-ttl-hours': '1' }),
        'pending-ttl',
        'pending-ttl-hours',
        3600,
        1,
        1,
        1e9,
      ),
    /not both/,
  );
  assert.throws(
    () =>
      durationOrAlias(p({ 'pending-ttl-hours': '1h' }), 'pending-ttl', 'pending-ttl-hours', 3600, 1, 1, 1e9),
    /whole number/,
  );
});
