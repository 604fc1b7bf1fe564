/**
 * `npm run bench:codec` — SCEP codec throughput on one core:
 *  - parse: decodePkiRequest of a PKCSReq (incl. the RSA signature verify), and its pure
 *    ASN.1/CMS part (parseSignedData + SCEP attributes), vs @peculiar/asn1-cms parsing the
 *    same bytes (ContentInfo → SignedData → signer attributes) as the baseline in the same run;
 *  - build: encodeCertRep SUCCESS, with the RSA share (one PKCS#1 v1.5 signature + one RSA
 *    public encryption, timed alone in the same run) subtracted to give the non-RSA rate.
 */
import { publicEncrypt, randomBytes, sign, constants } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { ContentInfo, SignedData } from '@peculiar/asn1-cms';
import { parseSignedData } from '../src/cms/index.js';
import { decodePkiRequest, encodeCertRep, PkiStatus, readScepAttributes } from '../src/scep/index.js';
import { makeIssued } from '../test/helpers/pki.js';
import { fixture, makeRequest } from '../test/helpers/scep-fixtures.js';

function rate(name: string, fn: () => unknown, ms = 1500): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    t = performance.now();
  }
  const ops = (n * 1000) / (t - t0);
  console.log(`${name.padEnd(52)} ${Math.round(ops).toLocaleString('en-US').padStart(10)} ops/s`);
  return ops;
}

const f = fixture();
const msg = makeRequest({ transactionId: 'bench-0001', cipher: 'aes256', digest: 'sha256' }).der;
console.log(`PKCSReq: ${msg.length} bytes; Node ${process.version}`);

const full = rate('decodePkiRequest (with RSA signature verify)', () => decodePkiRequest(msg));
const asn1 = rate('parseSignedData + SCEP attributes (no crypto)', () =>
  readScepAttributes(parseSignedData(msg).signerInfos[0]!.signedAttrs),
);
const peculiar = rate('baseline: @peculiar/asn1-cms parse (no crypto)', () => {
  const ci = AsnConvert.parse(msg, ContentInfo);
  const sd = AsnConvert.parse(ci.content, SignedData);
  return sd.signerInfos[0]!.signedAttrs?.length;
});

const issued = makeIssued({ subject: 'CN=device-1', issuer: f.ca, key: f.client.key });
const nonce = randomBytes(16);
const build = () =>
  encodeCertRep({
    transactionId: 'bench-0001',
    recipientNonce: nonce,
    status: PkiStatus.SUCCESS,
    certificates: [issued.certDer, f.ca.certDer],
    recipientCert: f.client.cert,
    cipher: 'aes256',
    signer: { cert: f.ca.cert, key: f.ca.key },
    digest: 'sha256',
  });
const certRepSize = build().length;
const total = rate('encodeCertRep SUCCESS (total, incl. RSA)', build);
const attrs = Buffer.alloc(220, 1);
const cek = randomBytes(32);
const clientPub = f.client.cert.publicKey();
const rsa = rate('RSA share alone (1 sign + 1 public encrypt)', () => {
  sign('sha256', attrs, f.ca.key);
  publicEncrypt({ key: clientPub, padding: constants.RSA_PKCS1_PADDING }, cek);
});
const nonRsaSeconds = 1 / total - 1 / rsa;
const nonRsa = nonRsaSeconds > 0 ? 1 / nonRsaSeconds : Infinity;
console.log(
  `${'encodeCertRep excluding RSA (derived)'.padEnd(52)} ${Math.round(nonRsa).toLocaleString('en-US').padStart(10)} ops/s`,
);
console.log(`CertRep: ${certRepSize} bytes`);
console.log('');
console.log(`ratio ASN.1 parse ours / @peculiar: ${(asn1 / peculiar).toFixed(1)}x`);
console.log(`ratio full decode (with verify) / @peculiar parse alone: ${(full / peculiar).toFixed(1)}x`);
console.log(`non-RSA share of encodeCertRep: ${(nonRsaSeconds * total * 100).toFixed(1)}%`);
