/**
 * Over HTTP, one after another against one server: wrong challenge, forged signature, single
 * DES, MD5, garbage, truncated DER, a 50 MB body. Each gets its documented answer (signed
 * FAILURE with the right failInfo, or 400/413), and afterwards the server still answers
 * GetCACaps and enrolls a well-formed request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { buildEnvelopedData } from '../../src/cms/index.js';
import { FailInfo, PkiStatus } from '../../src/scep/index.js';
import { attr, rawSignedData } from '../helpers/scep-fixtures.js';
import { caCerts, csrOf, device, openCertRep, pkcsReq, postPki, testServer } from '../helpers/scep-server.js';

function post50MB(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const size = 50 * 1024 * 1024;
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/cgi-bin/pkiclient.exe',
        headers: { 'content-length': size },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e);
    });
    const chunk = Buffer.alloc(1 << 20, 0x30);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

test('hostile requests get their documented answers and the server keeps serving', async (t) => {
  const server = await testServer(t);
  const trusted = await caCerts(server.url);
  const ca = trusted[0]!;
  const d = device('CN=hostile,O=Test', { pool: 1 });
  const failInfoOf = async (body: Buffer, nonce: Buffer, transactionId: string) => {
    const rep = openCertRep(body, { senderNonce: nonce, transactionId }, d, trusted);
    assert.equal(rep.status, PkiStatus.FAILURE);
    return rep.failInfo;
  };

  const wrong = pkcsReq(d, ca, { challenge: 'guess' });
  assert.equal(
    await failInfoOf((await postPki(server.url, wrong.der)).body, wrong.senderNonce, wrong.transactionId),
    FailInfo.badRequest,
  );

  const nonce = randomBytes(16);
  const scepAttrs = (tid: string) => [
    attr(OID.scepMessageType, der.printable('19')),
    attr(OID.scepTransactionId, der.printable(tid)),
    attr(OID.scepSenderNonce, der.octetString(nonce)),
  ];
  const env = buildEnvelopedData({ content: csrOf(d), recipient: ca, cipher: 'aes128' });
  const forged = rawSignedData({
    attrs: scepAttrs('h-forged'),
    content: env,
    signerCert: d.signer,
    signingKey: device('CN=x', { pool: 2 }).key,
  });
  assert.equal(
    await failInfoOf((await postPki(server.url, forged)).body, nonce, 'h-forged'),
    FailInfo.badMessageCheck,
  );

  const des = pkcsReq(d, ca, { cipher: 'des', allowSingleDes: true });
  assert.equal(
    await failInfoOf((await postPki(server.url, des.der)).body, des.senderNonce, des.transactionId),
    FailInfo.badAlg,
  );

  const md5 = rawSignedData({
    attrs: scepAttrs('h-md5'),
    content: env,
    signerCert: d.signer,
    hash: 'md5',
    digestOid: OID.md5,
  });
  assert.equal(await failInfoOf((await postPki(server.url, md5)).body, nonce, 'h-md5'), FailInfo.badAlg);

  assert.equal((await postPki(server.url, randomBytes(4096))).status, 400);
  const good = pkcsReq(d, ca);
  assert.equal((await postPki(server.url, good.der.subarray(0, good.der.length >> 1))).status, 400);
  assert.equal(await post50MB(server.port), 413);

  assert.equal(server.enrollment!.stats.internalErrors, 0);
  const caps = await fetch(`${server.url}?operation=GetCACaps`);
  assert.equal(caps.status, 200);
  const ok = openCertRep((await postPki(server.url, good.der)).body, good, d, trusted);
  assert.equal(ok.status, PkiStatus.SUCCESS, 'a well-formed request still enrolls');
});
