/**
 * Profile rules and extensions (src/ra/profile-rules.ts, src/ca/issuer.ts): subject rules and
 * the subject template (values escaped, never parsed as separators), SAN rules (types, DNS
 * suffixes and patterns, IP ranges, URI prefixes such as Intune's SID, counts, required types),
 * and the profile's extensions in an issued certificate, read back with @peculiar/asn1-x509
 * as the oracle (certificate policies, AIA, CRL DPs, a custom extension, a passed-through CSR
 * extension, EKU serverAuth + clientAuth).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityInfoAccessSyntax,
  Certificate as PCert,
  CertificatePolicies,
  CRLDistributionPoints,
  ExtendedKeyUsage,
} from '@peculiar/asn1-x509';
import { OID } from '../../src/asn1/oids.js';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import { buildRootCertificate } from '../../src/ca/keystore.js';
import { randomSerial } from '../../src/ca/serial.js';
import { parseCertificate } from '../../src/pkix/certificate.js';
import { buildCsr, parseCsr } from '../../src/pkix/csr.js';
import { extension, parseSanSpec, type GeneralName } from '../../src/pkix/extensions.js';
import { buildName, nameToString } from '../../src/pkix/name.js';
import {
  profileRulesPolicy,
  subjectFromTemplate,
  validateProfileRules,
  type ProfileRules,
} from '../../src/ra/profile-rules.js';
import type { EnrollmentRequest } from '../../src/ra/policy.js';
import { pooledRsaKey } from '../helpers/pki.js';

const key = pooledRsaKey(0);

function csr(
  subject: string,
  sans?: string | GeneralName[],
  extra?: { oid: string; critical?: boolean; value: Buffer }[],
) {
  return parseCsr(
    buildCsr({
      subject,
      key,
      publicKey: createPublicKey(key),
      ...(sans ? { subjectAltNames: typeof sans === 'string' ? parseSanSpec(sans) : sans } : {}),
      ...(extra ? { extensions: extra.map((e) => extension(e.oid, e.critical === true, e.value)) } : {}),
    }),
  );
}

function verdict(rules: ProfileRules, subject: string, sans?: string | GeneralName[]): string | undefined {
  const policy = profileRulesPolicy(rules)!;
  const r = policy({ csr: csr(subject, sans) } as unknown as EnrollmentRequest);
  if (r instanceof Promise) throw new Error('synchronous policy expected');
  return r?.text;
}

test('subject rules: allowed and required attribute types', () => {
  const rules: ProfileRules = { subject: { allowed: ['CN', 'O'], required: ['CN'] } };
  assert.equal(verdict(rules, 'CN=a,O=b'), undefined);
  assert.match(verdict(rules, 'CN=a,OU=x') ?? '', /subject attribute 2\.5\.4\.11 is not allowed/);
  assert.match(verdict(rules, 'O=b', 'dns:a.example') ?? '', /must have CN/);
});

test('subject template: fills placeholders, escapes values, refuses a request without the attribute', () => {
  const out = subjectFromTemplate('CN={{csr.CN}},O=Acme', buildName('CN=dev1,O=Evil'));
  assert.equal(nameToString(out), 'CN=dev1,O=Acme');
  // A CN holding separators stays one CN: no injected O.
  const tricky = subjectFromTemplate('CN={{csr.CN}},O=Acme', buildName('CN=x\\,O\\=Evil'));
  assert.equal(nameToString(tricky), 'CN=x\\,O\\=Evil,O=Acme');
  assert.throws(() => subjectFromTemplate('CN={{csr.CN}},OU={{csr.OU}}', buildName('CN=a')), /must have OU/);
  assert.throws(
    () => validateProfileRules({ subject: { template: 'CN={{csr.NOPE}}' } }),
    /unknown attribute/,
  );
});

test('SAN rules: types, DNS suffixes and patterns, IP ranges, URI prefixes, count, required', () => {
  const dns: ProfileRules = { subjectAltNames: { types: ['dns'], dnsSuffixes: ['laptops.example'] } };
  assert.equal(verdict(dns, 'CN=a', 'dns:a.laptops.example'), undefined);
  assert.equal(verdict(dns, 'CN=a', 'dns:laptops.example'), undefined);
  assert.match(verdict(dns, 'CN=a', 'dns:evil-laptops.example') ?? '', /not under laptops\.example/);
  assert.match(verdict(dns, 'CN=a', 'ip:10.0.0.1') ?? '', /type ip is not allowed/);
  const pattern: ProfileRules = { subjectAltNames: { dnsPatterns: ['*.lab.example'] } };
  assert.equal(verdict(pattern, 'CN=a', 'dns:host1.lab.example'), undefined);
  assert.match(verdict(pattern, 'CN=a', 'dns:a.b.lab.example') ?? '', /matches none/);
  const ips: ProfileRules = { subjectAltNames: { ipRanges: ['10.0.0.0/8', '2001:db8::/32'] } };
  assert.equal(verdict(ips, 'CN=a', 'ip:10.1.2.3,ip:2001:db8::1'), undefined);
  assert.match(verdict(ips, 'CN=a', 'ip:192.168.0.1') ?? '', /outside this profile's ranges/);
  const sid = 'tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-1001';
  const intune: ProfileRules = {
    subjectAltNames: { types: ['uri'], uriPrefixes: ['tag:microsoft.com,2022-09-14:sid:'] },
  };
  assert.equal(verdict(intune, 'CN=a', [{ type: 'uri', value: sid }]), undefined);
  assert.match(verdict(intune, 'CN=a', 'uri:https://evil.example/') ?? '', /not allowed in this profile/);
  assert.match(
    verdict({ subjectAltNames: { maxCount: 1 } }, 'CN=a', 'dns:a.example,dns:b.example') ?? '',
    /more than 1/,
  );
  assert.match(verdict({ subjectAltNames: { required: ['dns'] } }, 'CN=a') ?? '', /type dns is required/);
  assert.throws(
    () => validateProfileRules({ subjectAltNames: { ipRanges: ['10.0.0.0/99'] } }),
    /prefix length/,
  );
});

test("a profile's extensions in the issued certificate (oracle: @peculiar/asn1-x509)", () => {
  const caKey = pooledRsaKey(40);
  const ca = new CertificateAuthority({
    cert: parseCertificate(buildRootCertificate(caKey, 'CN=Profile Test CA', 30)),
    key: caKey,
    chain: [],
  });
  const custom = Buffer.from('0c0568656c6c6f', 'hex'); // UTF8String "hello"
  const passOid = '1.3.6.1.4.1.55555.1';
  const passValue = Buffer.from('040401020304', 'hex');
  const req = csr('CN=web1', 'dns:web1.example', [
    { oid: passOid, value: passValue },
    { oid: '1.3.6.1.4.1.55555.2', value: Buffer.from('0500', 'hex') },
  ]);
  const now = Date.now();
  const der = ca.issue({
    subjectRaw: req.subjectRaw,
    spki: req.spki,
    subjectAltNames: req.subjectAltNames,
    requestedExtensions: req.extensions,
    serial: randomSerial(),
    notBefore: new Date(now),
    notAfter: new Date(now + 86_400_000),
    profile: {
      validitySeconds: 86_400,
      keyUsage: ['digitalSignature', 'keyEncipherment'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
      certificatePolicies: ['1.3.6.1.4.1.55555.7.1'],
      crlDistributionPoints: ['http://crl.example/a.crl'],
      authorityInfoAccess: { caIssuers: ['http://ca.example/ca.der'], ocsp: ['http://ocsp.example/'] },
      customExtensions: [{ oid: '1.3.6.1.4.1.55555.9', valueHex: custom.toString('hex') }],
      passThroughExtensions: [passOid],
    },
  });
  const cert = AsnConvert.parse(der, PCert);
  const ext = (oid: string) => cert.tbsCertificate.extensions!.find((e) => e.extnID === oid);
  const eku = AsnConvert.parse(ext(OID.extKeyUsage)!.extnValue, ExtendedKeyUsage);
  assert.deepEqual([...eku].sort(), [OID.ekuClientAuth, OID.ekuServerAuth].sort());
  const pol = AsnConvert.parse(ext(OID.certificatePolicies)!.extnValue, CertificatePolicies);
  assert.deepEqual(
    Array.from(pol, (p) => p.policyIdentifier),
    ['1.3.6.1.4.1.55555.7.1'],
  );
  const aia = AsnConvert.parse(ext(OID.authorityInfoAccess)!.extnValue, AuthorityInfoAccessSyntax);
  assert.deepEqual(
    Array.from(aia, (a) => [a.accessMethod, a.accessLocation.uniformResourceIdentifier]),
    [
      ['1.3.6.1.5.5.7.48.1', 'http://ocsp.example/'],
      ['1.3.6.1.5.5.7.48.2', 'http://ca.example/ca.der'],
    ],
  );
  const dps = AsnConvert.parse(ext(OID.cRLDistributionPoints)!.extnValue, CRLDistributionPoints);
  assert.equal(
    dps[0]!.distributionPoint!.fullName![0]!.uniformResourceIdentifier,
    'http://crl.example/a.crl',
  );
  assert.deepEqual(Buffer.from(ext('1.3.6.1.4.1.55555.9')!.extnValue.buffer), custom);
  assert.deepEqual(
    Buffer.from(ext(passOid)!.extnValue.buffer),
    passValue,
    'the named CSR extension is passed through',
  );
  assert.equal(ext('1.3.6.1.4.1.55555.2'), undefined, 'an extension not named is not');
});
