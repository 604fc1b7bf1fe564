/**
 * A small SCEP server on loopback for client tests, built from scepter's own codec and CA
 * (no third-party program is imitated). It can misbehave on request — wrong recipientNonce,
 * foreign signer, flipped signature byte, wrong transactionID, single-DES envelope, PENDING
 * first, HTTP errors, no answer — so the client's checks can be exercised one by one.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import { DEFAULT_CLIENT_PROFILE } from '../../src/ca/profile.js';
import { randomSerial } from '../../src/ca/serial.js';
import { buildDegenerate, buildEnvelopedData, buildSignedData } from '../../src/cms/index.js';
import { parseCertificate, type Certificate } from '../../src/pkix/certificate.js';
import { parseCsr } from '../../src/pkix/csr.js';
import { namesEqual } from '../../src/pkix/name.js';
import {
  caCertResponse,
  decodeGetMessage,
  decodePkiRequest,
  encodeCertRep,
  FailInfo,
  MessageType,
  nextCaCertResponse,
  openEnvelope,
  parseIssuerAndSerial,
  PkiStatus,
  scepAttributes,
  type PkiRequest,
} from '../../src/scep/index.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';
import type { CipherName } from '../../src/crypto/algorithms.js';
import { makeIssued, makeSelfSigned, pooledRsaKey, type TestCert } from './pki.js';

export type Tamper = 'recipientNonce' | 'signer' | 'signature' | 'transactionId' | 'des' | 'unsigned-next-ca';

export interface FakeScepOptions {
  /** GetCACaps body (default: AES, POSTPKIOperation, Renewal, SHA-256, SCEPStandard, GetNextCACert). */
  caps?: string;
  /** Separate RA encryption and RA signing certificates (NDES style, RA certs listed last). */
  ra?: boolean;
  /** Validity of issued certificates, seconds (default one day). */
  validitySeconds?: number;
  /** How many PENDING answers a new request gets before it is issued (default 0). */
  pending?: number;
  /** Answer every PKIOperation with FAILURE and this failInfo. */
  fail?: FailInfo;
  /** Challenge required in PKCSReq (default: none). */
  challenge?: string;
  tamper?: Tamper;
  /** HTTP status to answer every request with (e.g. 503) for the next `httpErrorCount` requests. */
  httpError?: number;
  httpErrorCount?: number;
  /** Never answer (to test timeouts). */
  hang?: boolean;
}

export interface FakeScep {
  url: string;
  ca: TestCert;
  raEnc?: TestCert;
  raSign?: TestCert;
  /** Set options while running. */
  options: FakeScepOptions;
  /** Every PKIOperation seen: message type, transactionID, HTTP method. */
  log: Array<{ messageType: number; transactionId: string; method: string }>;
  /** Every HTTP request seen (operation names). */
  http: string[];
  issued: Certificate[];
  close(): Promise<void>;
}

interface Txn {
  csrSubject: Buffer;
  spki: Buffer;
  sans: ReturnType<typeof parseCsr>['subjectAltNames'];
  remaining: number;
  signerSpki: Buffer;
  issued?: Buffer;
}

export async function startFakeScep(initial: FakeScepOptions = {}): Promise<FakeScep> {
  // Pooled keys (indices 10–14) keep server start cheap; certificates are fresh each time.
  const ca = makeSelfSigned({
    subject: 'CN=Fake SCEP CA,O=scepter tests',
    ca: true,
    days: 365,
    key: pooledRsaKey(10),
  });
  const authority = new CertificateAuthority({ cert: ca.cert, key: ca.key, chain: [] });
  const raEnc = makeIssued({ subject: 'CN=Fake RA enc', issuer: ca, keyUsage: [2], key: pooledRsaKey(11) });
  const raSign = makeIssued({ subject: 'CN=Fake RA sign', issuer: ca, keyUsage: [0], key: pooledRsaKey(12) });
  const foreign = makeSelfSigned({
    subject: 'CN=Fake SCEP CA,O=scepter tests',
    ca: true,
    days: 365,
    key: pooledRsaKey(13),
  });
  const nextCa = makeSelfSigned({
    subject: 'CN=Fake SCEP CA 2,O=scepter tests',
    ca: true,
    days: 730,
    key: pooledRsaKey(14),
  });
  const txns = new Map<string, Txn>();
  const state: FakeScep = {
    url: '',
    ca,
    options: { ...initial },
    log: [],
    http: [],
    issued: [],
    close: async () => undefined,
  };
  if (initial.ra) {
    state.raEnc = raEnc;
    state.raSign = raSign;
  }

  const signerFor = (o: FakeScepOptions) => {
    if (o.tamper === 'signer') return { cert: foreign.cert, key: foreign.key };
    return o.ra ? { cert: raSign.cert, key: raSign.key } : { cert: ca.cert, key: ca.key };
  };

  function issue(t: Txn, o: FakeScepOptions): Buffer {
    const now = Date.now();
    const der = authority.issue({
      subjectRaw: t.csrSubject,
      spki: t.spki,
      subjectAltNames: t.sans,
      serial: randomSerial(),
      notBefore: new Date(Math.floor(now / 1000) * 1000 - 1000),
      notAfter: new Date(Math.floor(now / 1000) * 1000 + (o.validitySeconds ?? 86_400) * 1000),
      profile: DEFAULT_CLIENT_PROFILE,
    });
    state.issued.push(parseCertificate(der));
    return der;
  }

  function reply(
    req: PkiRequest,
    o: FakeScepOptions,
    status: PkiStatus,
    extra: { certs?: Buffer[]; crls?: Buffer[]; failInfo?: FailInfo; cipher?: CipherName },
  ): Buffer {
    const signer = signerFor(o);
    const recipientNonce = o.tamper === 'recipientNonce' ? randomBytes(16) : req.senderNonce;
    const transactionId = o.tamper === 'transactionId' ? 'NOT-' + req.transactionId : req.transactionId;
    let der: Buffer;
    if (o.tamper === 'des' && status === PkiStatus.SUCCESS) {
      // What micromdm scepserver does: the degenerate SignedData enveloped with single DES.
      const envelope = buildEnvelopedData({
        content: buildDegenerate({ certificates: extra.certs ?? [], crls: extra.crls ?? [] }),
        recipient: req.signerCert,
        cipher: 'des',
        allowSingleDes: true,
      });
      der = buildSignedData({
        signerCert: signer.cert,
        signerKey: signer.key,
        digest: req.digest,
        content: envelope,
        attributes: scepAttributes({
          messageType: MessageType.CertRep,
          transactionId,
          senderNonce: randomBytes(16),
          recipientNonce,
          pkiStatus: status,
        }),
      });
    } else {
      der = encodeCertRep({
        transactionId,
        recipientNonce,
        status,
        ...(extra.failInfo !== undefined
          ? { failInfo: extra.failInfo, failInfoText: 'refused by the fake server' }
          : {}),
        ...(extra.certs ? { certificates: extra.certs } : {}),
        ...(extra.crls ? { crls: extra.crls } : {}),
        recipientCert: req.signerCert,
        ...(extra.cipher ? { cipher: extra.cipher } : {}),
        signer,
        digest: req.digest,
      });
    }
    if (o.tamper === 'signature') {
      // The SignerInfo signature is the last element of the message: flip its last byte.
      der = Buffer.from(der);
      der[der.length - 1]! ^= 0x01;
    }
    return der;
  }

  function pkiOperation(body: Buffer, method: string): Buffer {
    const o = state.options;
    const req = decodePkiRequest(body);
    state.log.push({ messageType: req.messageType, transactionId: req.transactionId, method });
    if (o.fail !== undefined) return reply(req, o, PkiStatus.FAILURE, { failInfo: o.fail });
    const recipient = o.ra ? raEnc : ca;
    const { content, cipher } = openEnvelope(req, [
      { cert: recipient.cert, transport: new RsaKeyTransport(recipient.key) },
    ]);
    switch (req.messageType) {
      case MessageType.PKCSReq:
      case MessageType.RenewalReq: {
        const csr = parseCsr(content);
        if (req.messageType === MessageType.PKCSReq && !req.signerCert.spki.equals(csr.spki)) {
          // A PKCSReq signed by an existing certificate of ours is a legacy renewal.
          const ours = state.issued.some((c) => c.der.equals(req.signerCert.der));
          if (!ours) return reply(req, o, PkiStatus.FAILURE, { failInfo: FailInfo.badRequest });
        } else if (
          req.messageType === MessageType.PKCSReq &&
          o.challenge !== undefined &&
          csr.challengePassword !== o.challenge
        ) {
          return reply(req, o, PkiStatus.FAILURE, { failInfo: FailInfo.badRequest });
        }
        if (
          req.messageType === MessageType.RenewalReq &&
          !state.issued.some((c) => c.der.equals(req.signerCert.der))
        ) {
          return reply(req, o, PkiStatus.FAILURE, { failInfo: FailInfo.badRequest });
        }
        const t: Txn = {
          csrSubject: Buffer.from(csr.subjectRaw),
          spki: Buffer.from(csr.spki),
          sans: csr.subjectAltNames,
          remaining: o.pending ?? 0,
          signerSpki: req.signerCert.spki,
        };
        txns.set(req.transactionId, t);
        if (t.remaining > 0) return reply(req, o, PkiStatus.PENDING, {});
        t.issued = issue(t, o);
        return reply(req, o, PkiStatus.SUCCESS, { certs: [t.issued, ca.certDer], cipher });
      }
      case MessageType.CertPoll: {
        const t = txns.get(req.transactionId);
        if (!t || !t.signerSpki.equals(req.signerCert.spki)) {
          return reply(req, o, PkiStatus.FAILURE, { failInfo: FailInfo.badRequest });
        }
        if (!t.issued && --t.remaining > 0) return reply(req, o, PkiStatus.PENDING, {});
        t.issued ??= issue(t, o);
        return reply(req, o, PkiStatus.SUCCESS, { certs: [t.issued], cipher });
      }
      case MessageType.GetCert: {
        const ias = parseIssuerAndSerial(content);
        const want = BigInt('0x' + ias.serial.toString('hex'));
        const hit = state.issued.find(
          (c) => namesEqual(c.issuerRaw, ias.issuerRaw) && BigInt('0x' + c.serialHex) === want,
        );
        if (!hit) return reply(req, o, PkiStatus.FAILURE, { failInfo: FailInfo.badCertId });
        return reply(req, o, PkiStatus.SUCCESS, { certs: [hit.der], cipher });
      }
      case MessageType.GetCRL: {
        const now = new Date(Math.floor(Date.now() / 1000) * 1000);
        const crl = authority.buildCrl({
          revoked: state.issued.slice(0, 1).map((c) => ({ serial: c.serialHex, revokedAt: now })),
          crlNumber: 1n,
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + 86_400_000),
        });
        return reply(req, o, PkiStatus.SUCCESS, { crls: [crl], cipher });
      }
      default:
        return reply(req, o, PkiStatus.FAILURE, { failInfo: FailInfo.badRequest });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const o = state.options;
    const u = new URL(req.url ?? '/', 'http://x');
    const op = u.searchParams.get('operation') ?? '';
    state.http.push(op);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (o.hang) return; // the client must time out
    if (o.httpError !== undefined && (o.httpErrorCount ?? Infinity) > 0) {
      if (o.httpErrorCount !== undefined) o.httpErrorCount--;
      res.writeHead(o.httpError, { 'content-type': 'text/plain' }).end('unavailable\n');
      return;
    }
    const send = (type: string, body: Buffer | string): void => {
      res.writeHead(200, { 'content-type': type }).end(body);
    };
    try {
      switch (op) {
        case 'GetCACaps':
          // Deliberately odd: CRLF, mixed case, a wrong Content-Type (the client ignores it).
          return send(
            'application/x-pki-message',
            o.caps ?? 'aes\r\nPOSTPKIOperation\r\nrenewal\r\nSHA-256\r\nSCEPStandard\r\nGetNextCACert\r\n',
          );
        case 'GetCACert': {
          const certs = o.ra ? [ca.certDer, raEnc.certDer, raSign.certDer] : [ca.certDer];
          const r = caCertResponse(certs);
          return send(r.contentType, r.body);
        }
        case 'GetNextCACert': {
          if (o.tamper === 'unsigned-next-ca') {
            return send(
              'application/x-x509-next-ca-cert',
              buildDegenerate({ certificates: [nextCa.certDer] }),
            );
          }
          const s = o.tamper === 'signer' ? foreign : ca;
          return send(
            'application/x-x509-next-ca-cert',
            nextCaCertResponse([nextCa.certDer], { cert: s.cert, key: s.key }, 'sha256'),
          );
        }
        case 'PKIOperation': {
          const body =
            req.method === 'POST'
              ? Buffer.concat(chunks)
              : decodeGetMessage(u.searchParams.get('message') ?? '');
          return send('application/x-pki-message', pkiOperation(body, req.method ?? 'GET'));
        }
        default:
          res.writeHead(400).end('bad operation\n');
      }
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${port}/cgi-bin/pkiclient.exe`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
