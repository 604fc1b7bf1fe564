import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPkcs11Uri, parsePkcs11Uri, Pkcs11UriError } from '../../src/crypto/pkcs11-uri.js';

test('RFC 7512 examples and percent-decoding', () => {
  const u = parsePkcs11Uri(
    'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4%BD%EC%91?module-path=/mod/lib.so&pin-source=file:/etc/token',
  );
  assert.equal(u.token, 'The Software PKCS#11 Softtoken');
  assert.equal(u.manufacturer, 'Snake Oil, Inc.');
  assert.equal(u.model, '1.0');
  assert.equal(u.object, 'my-certificate');
  assert.equal(u.type, 'private');
  assert.deepEqual(u.id, Buffer.from('69953e5cf4bdec91', 'hex'));
  assert.equal(u.modulePath, '/mod/lib.so');
  assert.equal(u.pinSource, 'file:/etc/token');
  // UTF-8 in a label, attribute names case-insensitive, vendor attributes ignored.
  const v = parsePkcs11Uri('PKCS11:Object=%E5%B0%8F%E9%8D%B5;x-vendor=whatever;slot-id=3');
  assert.equal(v.object, '小鍵');
  assert.equal(v.slotId, 3);
  assert.deepEqual(parsePkcs11Uri('pkcs11:'), {});
});

test('format round-trips and never writes a PIN', () => {
  const src =
    'pkcs11:token=CA%3Bone;object=ca%20key;id=%01%FF?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin&pin-value=1234';
  const u = parsePkcs11Uri(src, { allowPinValue: true });
  assert.equal(u.pinValue, '1234');
  assert.equal(u.token, 'CA;one');
  const out = formatPkcs11Uri(u);
  assert.doesNotMatch(out, /pin-value|1234/);
  assert.equal(
    out,
    'pkcs11:token=CA%3Bone;object=ca%20key;id=%01%FF?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin',
  );
  const back = parsePkcs11Uri(out);
  const { pinValue, ...rest } = u;
  assert.equal(pinValue, '1234');
  assert.deepEqual(back, rest);
});

test('bad URIs are refused with a clear error', () => {
  const bad: Array<[string, RegExp]> = [
    ['pkcs12:token=x', /starts with "pkcs11:"/],
    ['pkcs11:token=x;token=y', /repeats "token"/],
    ['pkcs11:tokn=x', /unknown PKCS#11 URI attribute "tokn"/],
    ['pkcs11:token=%zz', /bad percent escape in token/],
    ['pkcs11:token=%4', /bad percent escape/],
    ['pkcs11:object=%ff', /not valid UTF-8/],
    ['pkcs11:object=a%0Ab', /control characters/],
    ['pkcs11:token', /malformed PKCS#11 URI attribute/],
    ['pkcs11:type=secret', /unknown object type/],
    ['pkcs11:slot-id=-1', /slot-id must be a decimal/],
    ['pkcs11:id=', /id must not be empty/],
    ['pkcs11:token=a#frag', /no fragment/],
    ['pkcs11:token=a?module-name=softhsm2', /module-name is not supported/],
    ['pkcs11:token=a?pin-value=1234', /carries pin-value/],
    [`pkcs11:object=${'a'.repeat(5000)}`, /too long/],
  ];
  for (const [uri, msg] of bad)
    assert.throws(
      () => parsePkcs11Uri(uri),
      (e: unknown) => e instanceof Pkcs11UriError && msg.test(e.message),
      uri,
    );
});
