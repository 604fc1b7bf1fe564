/**
 * RSA private keys on a PKCS#11 token behind the key seam (src/crypto/private-key.ts).
 *
 * - Signing: CKM_RSA_PKCS over a DigestInfo we build (the token never sees the data, and every
 *   token has this mechanism).
 * - Decryption: CKM_RSA_X_509 (raw RSA); the padding is removed by our constant-time code in
 *   key-transport.ts, so the token cannot become a padding oracle. A token without raw RSA
 *   falls back to its own CKM_RSA_PKCS / CKM_RSA_PKCS_OAEP with a start-up warning
 *   (docs/security.md explains the risk).
 * - Failures: at start, a missing module, token, object or a wrong PIN is a `Pkcs11SetupError`
 *   naming which. While serving, a failing call closes the session and reconnects once
 *   (session, login, object; if the token cannot be found, the module is re-initialized once);
 *   if that fails too the call throws `KeyUnavailableError` (the request gets 503) and the
 *   next call tries again. A PIN the token rejects while reconnecting is never retried (a
 *   retry loop would lock the token).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as P11 from 'pkcs11js';
import type { DigestName } from './algorithms.js';
import {
  ckr,
  pkcs11Generation,
  pkcs11Module,
  Pkcs11SetupError,
  reinitializePkcs11Module,
  releasePkcs11Module,
  retainPkcs11Module,
  withShared,
  type Pkcs11Module,
} from './pkcs11.js';
import { formatPkcs11Uri, parsePkcs11Uri, type Pkcs11Uri } from './pkcs11-uri.js';
import { KeyUnavailableError, type PrivateKeyHandle, type RsaPadding } from './private-key.js';

/** DER prefixes of DigestInfo (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Record<DigestName, Buffer> = {
  sha1: Buffer.from('3021300906052b0e03021a05000414', 'hex'),
  sha224: Buffer.from('302d300d06096086480165030402040500041c', 'hex'),
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

const SECRET_LABEL = 'scepter rsa implicit rejection kdk v1 pkcs11';

export interface Pkcs11KeyOptions {
  /** Accept `pin-value` in the URI (discouraged). */
  allowPinValue?: boolean;
  /** The PIN when the URI has no pin-source/pin-value (e.g. from SCEPTER_PKCS11_PIN). */
  pin?: string;
  /** The key must have this public key (SubjectPublicKeyInfo DER), e.g. the certificate's. */
  expectedSpki?: Buffer;
  /** Open a read-write session (key generation). */
  readWrite?: boolean;
}

/** Reads the PIN named by the URI (pin-source file or pin-value), else `fallback`. */
export function resolvePin(u: Pkcs11Uri, fallback: string | undefined): string {
  if (u.pinValue !== undefined) return u.pinValue;
  if (u.pinSource !== undefined) {
    const path = u.pinSource.startsWith('file:')
      ? u.pinSource.slice(5).replace(/^\/\/(?=\/)/, '')
      : u.pinSource;
    if (!path.startsWith('/')) throw new Pkcs11SetupError('pin-source must be file:/absolute/path');
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new Pkcs11SetupError(`cannot read the PIN file ${path}`);
    }
  }
  if (fallback !== undefined && fallback !== '') return fallback;
  throw new Pkcs11SetupError(
    'no PIN: add pin-source=file:/path to the PKCS#11 URI or set SCEPTER_PKCS11_PIN',
  );
}

function trim(s: string): string {
  return s.replace(/[\s\0]+$/, '');
}

interface Connection {
  session: P11.Handle;
  object: P11.Handle;
  generation: number;
}

/** A private key object on a token. */
export class Pkcs11Key implements PrivateKeyHandle {
  readonly type = 'rsa';
  readonly label: string;
  readonly publicKey!: KeyObject;
  readonly modulusBytes!: number;
  readonly rsaDecryptRaw?: (input: Buffer) => Buffer;
  readonly rsaDecryptPadded?: (input: Buffer, padding: RsaPadding) => Buffer;
  private readonly mod: Pkcs11Module;
  private readonly uri: Pkcs11Uri;
  private readonly pin: string;
  private readonly modulus!: Buffer;
  private conn: Connection | undefined;
  private pinRejected = false;
  private secret: Buffer | undefined;
  private closed = false;

  /** Opens the key: throws `Pkcs11SetupError` naming what is wrong. */
  constructor(uri: Pkcs11Uri, pin: string, opts: { expectedSpki?: Buffer; readWrite?: boolean } = {}) {
    if (uri.modulePath === undefined) throw new Pkcs11SetupError('the PKCS#11 URI has no module-path');
    if (uri.object === undefined && uri.id === undefined)
      throw new Pkcs11SetupError('the PKCS#11 URI names no key: give object=… and/or id=…');
    if (uri.type !== undefined && uri.type !== 'private')
      throw new Pkcs11SetupError('the PKCS#11 URI must name a private key (type=private)');
    this.uri = uri;
    this.pin = pin;
    this.label = formatPkcs11Uri(uri);
    this.mod = pkcs11Module(uri.modulePath);
    retainPkcs11Module(this.mod);
    try {
      this.conn = this.open(opts.readWrite === true, true);
    } catch (e) {
      releasePkcs11Module(this.mod);
      throw e;
    }
    try {
      const { modulus, publicKey, raw } = this.inspect(opts.expectedSpki);
      this.modulus = modulus;
      this.modulusBytes = modulus.length;
      this.publicKey = publicKey;
      if (raw) {
        this.rsaDecryptRaw = (input) => this.decryptRaw(input);
      } else {
        process.emitWarning(
          `${this.label}: the token has no raw RSA (CKM_RSA_X_509); envelope decryption uses the token's own padding check (see docs/security.md)`,
          { code: 'SCEPTER_PKCS11_NO_RAW_RSA' },
        );
        this.rsaDecryptPadded = (input, padding) => this.decryptPadded(input, padding);
      }
      // Computed now, while the token is known to be there.
      this.rejectionSecret();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Key type, public key and raw-RSA support of the object just opened. */
  private inspect(expectedSpki: Buffer | undefined): { modulus: Buffer; publicKey: KeyObject; raw: boolean } {
    const c = this.conn!;
    const p11 = this.mod.p11;
    const l = this.mod.lib;
    const attrs = withShared(() =>
      p11.C_GetAttributeValue(c.session, c.object, [
        { type: l.CKA_KEY_TYPE },
        { type: l.CKA_MODULUS },
        { type: l.CKA_PUBLIC_EXPONENT },
      ]),
    );
    const keyType = attrs[0]!.value as Buffer;
    if (keyType.readUIntLE(0, Math.min(keyType.length, 6)) !== l.CKK_RSA)
      throw new Pkcs11SetupError(`${this.label}: only RSA keys on a token are supported`);
    const n = stripZeros(attrs[1]!.value as Buffer);
    const e = stripZeros(attrs[2]!.value as Buffer);
    const publicKey = createPublicKey({
      key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') },
      format: 'jwk',
    });
    if (expectedSpki && !expectedSpki.equals(publicKey.export({ format: 'der', type: 'spki' })))
      throw new Pkcs11SetupError(`${this.label}: the key on the token does not match the certificate`);
    const mechs = withShared(() => p11.C_GetMechanismList(this.slotOf(c.session)));
    return { modulus: n, publicKey, raw: mechs.includes(l.CKM_RSA_X_509) };
  }

  private slotOf(session: P11.Handle): P11.Handle {
    return this.mod.p11.C_GetSessionInfo(session).slotID;
  }

  /** Finds the token, opens a session, logs in, finds the object. */
  private open(readWrite: boolean, atStart: boolean): Connection {
    const p11 = this.mod.p11;
    const l = this.mod.lib;
    const u = this.uri;
    const generation = pkcs11Generation();
    return withShared(() => {
      let slot: P11.Handle | undefined;
      let list: P11.Handle[];
      try {
        list = p11.C_GetSlotList(true);
      } catch (e) {
        throw new Pkcs11SetupError(`${this.label}: cannot list the slots (${ckr(e)})`);
      }
      for (const s of list) {
        if (u.slotId !== undefined && s.readUIntLE(0, Math.min(s.length, 6)) !== u.slotId) continue;
        let ti: P11.TokenInfo;
        try {
          ti = p11.C_GetTokenInfo(s);
        } catch {
          continue; // a slot whose token is gone
        }
        if (u.token !== undefined && trim(ti.label) !== u.token) continue;
        if (u.serial !== undefined && trim(ti.serialNumber) !== u.serial) continue;
        if (u.manufacturer !== undefined && trim(ti.manufacturerID) !== u.manufacturer) continue;
        if (u.model !== undefined && trim(ti.model) !== u.model) continue;
        slot = s;
        break;
      }
      if (slot === undefined) throw new Pkcs11SetupError(`${this.label}: no such token is present`);
      const session = p11.C_OpenSession(slot, l.CKF_SERIAL_SESSION | (readWrite ? l.CKF_RW_SESSION : 0));
      try {
        if (this.pinRejected) throw new Pkcs11SetupError(`${this.label}: the token rejected the PIN`);
        try {
          p11.C_Login(session, l.CKU_USER, this.pin);
        } catch (e) {
          const code = ckr(e);
          if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LOCKED' || code === 'CKR_PIN_LEN_RANGE') {
            if (!atStart) this.pinRejected = true;
            throw new Pkcs11SetupError(
              `${this.label}: ${code === 'CKR_PIN_LOCKED' ? 'the PIN is locked' : 'wrong PIN'} (${code})`,
            );
          }
          if (code !== 'CKR_USER_ALREADY_LOGGED_IN')
            throw new Pkcs11SetupError(`${this.label}: login failed (${code})`);
        }
        const template: P11.Template = [{ type: l.CKA_CLASS, value: l.CKO_PRIVATE_KEY }];
        if (u.object !== undefined) template.push({ type: l.CKA_LABEL, value: u.object });
        if (u.id !== undefined) template.push({ type: l.CKA_ID, value: u.id });
        p11.C_FindObjectsInit(session, template);
        let found: P11.Handle[];
        try {
          found = p11.C_FindObjects(session, 2);
        } finally {
          p11.C_FindObjectsFinal(session);
        }
        if (found.length === 0) throw new Pkcs11SetupError(`${this.label}: no such private key on the token`);
        if (found.length > 1)
          throw new Pkcs11SetupError(`${this.label}: several private keys match; add id=… to the URI`);
        return { session, object: found[0]!, generation };
      } catch (e) {
        try {
          p11.C_CloseSession(session);
        } catch {
          // gone
        }
        throw e;
      }
    });
  }

  private dropSession(): void {
    const c = this.conn;
    this.conn = undefined;
    if (c && c.generation === pkcs11Generation()) {
      try {
        withShared(() => this.mod.p11.C_CloseSession(c.session));
      } catch {
        // the token is gone: nothing to close
      }
    }
  }

  /** Reopens the connection once: session and object, then (if needed) the whole module. */
  private reconnect(): Connection {
    this.dropSession();
    let c: Connection;
    const seen = pkcs11Generation();
    try {
      c = this.open(false, false);
    } catch (first) {
      if (this.pinRejected) throw first;
      reinitializePkcs11Module(this.mod, seen);
      c = this.open(false, false);
    }
    const pub = withShared(() =>
      this.mod.p11.C_GetAttributeValue(c.session, c.object, [{ type: this.mod.lib.CKA_MODULUS }]),
    );
    if (!stripZeros(pub[0]!.value as Buffer).equals(this.modulus)) {
      try {
        withShared(() => this.mod.p11.C_CloseSession(c.session));
      } catch {
        // ignore
      }
      throw new Pkcs11SetupError(`${this.label}: the key on the token has changed`);
    }
    this.conn = c;
    return c;
  }

  /**
   * Runs one token operation: on the current session, or after one reconnect; a second
   * failure is `KeyUnavailableError`.
   */
  private run<T>(op: (p11: P11.PKCS11, c: Connection) => T): T {
    if (this.closed) throw new KeyUnavailableError(`${this.label}: the key has been closed`);
    const c = this.conn;
    if (c && c.generation === pkcs11Generation()) {
      try {
        return withShared(() => op(this.mod.p11, c));
      } catch {
        // fall through: reconnect once
      }
    }
    let fresh: Connection;
    try {
      fresh = this.reconnect();
    } catch (e) {
      this.conn = undefined;
      throw new KeyUnavailableError(
        e instanceof Pkcs11SetupError ? e.message : `${this.label}: the token is unavailable (${ckr(e)})`,
        { cause: e },
      );
    }
    try {
      return withShared(() => op(this.mod.p11, fresh));
    } catch (e) {
      // Another thread re-initialized the module between our reconnect and the call: that
      // ended our new session, not the token; reconnect once more.
      if (fresh.generation !== pkcs11Generation()) {
        try {
          const again = this.reconnect();
          return withShared(() => op(this.mod.p11, again));
        } catch (e2) {
          this.dropSession();
          throw new KeyUnavailableError(`${this.label}: the token operation failed (${ckr(e2)})`, {
            cause: e2,
          });
        }
      }
      this.dropSession();
      throw new KeyUnavailableError(`${this.label}: the token operation failed (${ckr(e)})`, { cause: e });
    }
  }

  sign(digest: DigestName | null, data: Buffer): Buffer {
    if (digest === null) throw new TypeError('RSA signing needs a digest');
    const di = Buffer.concat([DIGEST_INFO[digest], createHash(digest).update(data).digest()]);
    return this.run((p11, c) => {
      p11.C_SignInit(c.session, { mechanism: this.mod.lib.CKM_RSA_PKCS }, c.object);
      return Buffer.from(p11.C_Sign(c.session, di, Buffer.alloc(this.modulusBytes)));
    });
  }

  /** RSADP on the token. Input longer than k or not below n is refused here (public). */
  private decryptRaw(input: Buffer): Buffer {
    const k = this.modulusBytes;
    if (input.length > k) throw new RangeError('ciphertext longer than the modulus');
    const c = input.length === k ? input : Buffer.concat([Buffer.alloc(k - input.length), input]);
    if (Buffer.compare(c, this.modulus) >= 0) throw new RangeError('ciphertext not below the modulus');
    const out = this.run((p11, conn) => {
      p11.C_DecryptInit(conn.session, { mechanism: this.mod.lib.CKM_RSA_X_509 }, conn.object);
      return Buffer.from(p11.C_Decrypt(conn.session, c, Buffer.alloc(k)));
    });
    return out.length === k ? out : Buffer.concat([Buffer.alloc(k - out.length), out]);
  }

  /**
   * The fallback: the token unpads. A padding error cannot be told from a token failure by
   * its code, so it is answered as a bad ciphertext (never a reconnect, never a 503).
   */
  private decryptPadded(input: Buffer, padding: RsaPadding): Buffer {
    const l = this.mod.lib;
    const c = this.conn;
    if (!c || c.generation !== pkcs11Generation()) this.run(() => undefined);
    const conn = this.conn!;
    const mechanism: P11.Mechanism =
      padding.scheme === 'pkcs1'
        ? { mechanism: l.CKM_RSA_PKCS }
        : {
            mechanism: l.CKM_RSA_PKCS_OAEP,
            parameter: <P11.RsaOAEP>{
              type: l.CK_PARAMS_RSA_OAEP,
              hashAlg: OAEP_HASH[padding.hash](l),
              mgf: OAEP_MGF[padding.hash](l),
              source: 1,
            },
          };
    return withShared(() => {
      this.mod.p11.C_DecryptInit(conn.session, mechanism, conn.object);
      return Buffer.from(this.mod.p11.C_Decrypt(conn.session, input, Buffer.alloc(this.modulusBytes)));
    });
  }

  rejectionSecret(): Buffer {
    // PKCS#1 v1.5 signatures are deterministic: the same secret in every process, computable
    // only by the token holder.
    return (this.secret ??= createHash('sha256')
      .update(SECRET_LABEL)
      .update(this.sign('sha256', Buffer.from(SECRET_LABEL)))
      .digest());
  }

  /** Closes this key's session; the module is finalized when its last key closes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropSession();
    releasePkcs11Module(this.mod);
  }
}

const OAEP_HASH: Record<DigestName, (l: typeof P11) => number> = {
  sha1: (l) => l.CKM_SHA_1,
  sha224: (l) => l.CKM_SHA224,
  sha256: (l) => l.CKM_SHA256,
  sha384: (l) => l.CKM_SHA384,
  sha512: (l) => l.CKM_SHA512,
};
const OAEP_MGF: Record<DigestName, (l: typeof P11) => number> = {
  sha1: (l) => l.CKG_MGF1_SHA1,
  sha224: (l) => l.CKG_MGF1_SHA224,
  sha256: (l) => l.CKG_MGF1_SHA256,
  sha384: (l) => l.CKG_MGF1_SHA384,
  sha512: (l) => l.CKG_MGF1_SHA512,
};

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Opens the private key a PKCS#11 URI names (see `Pkcs11KeyOptions`). */
export function openPkcs11Key(uri: string, opts: Pkcs11KeyOptions = {}): Pkcs11Key {
  const u = parsePkcs11Uri(uri, opts.allowPinValue ? { allowPinValue: true } : {});
  const pin = resolvePin(u, opts.pin);
  const keyOpts: { expectedSpki?: Buffer; readWrite?: boolean } = {};
  if (opts.expectedSpki) keyOpts.expectedSpki = opts.expectedSpki;
  if (opts.readWrite) keyOpts.readWrite = true;
  return new Pkcs11Key(u, pin, keyOpts);
}

/**
 * Generates an RSA key pair on the token the URI names, labelled `object` with CKA_ID `id`
 * (both from the URI; at least one is needed): private key sensitive, not extractable, for
 * signing and decryption only. Refuses when a private key with that label/id exists. Returns
 * the opened key.
 */
export function generatePkcs11RsaKey(uri: string, bits: number, opts: Pkcs11KeyOptions = {}): Pkcs11Key {
  const u = parsePkcs11Uri(uri, opts.allowPinValue ? { allowPinValue: true } : {});
  const pin = resolvePin(u, opts.pin);
  if (u.modulePath === undefined) throw new Pkcs11SetupError('the PKCS#11 URI has no module-path');
  if (u.object === undefined && u.id === undefined)
    throw new Pkcs11SetupError('the PKCS#11 URI names no key: give object=… and/or id=…');
  // Refuse to shadow an existing key (two objects with one label would make the URI ambiguous).
  try {
    new Pkcs11Key(u, pin).close();
    throw new Pkcs11SetupError(`${formatPkcs11Uri(u)}: a private key with this label/id exists already`);
  } catch (e) {
    if (!(e instanceof Pkcs11SetupError) || !/no such private key/.test(e.message)) throw e;
  }
  const mod = pkcs11Module(u.modulePath);
  const { p11, lib: l } = mod;
  const probe = findSessionFor(u, pin, mod);
  try {
    const common: P11.Template = [{ type: l.CKA_TOKEN, value: true }];
    if (u.object !== undefined) common.push({ type: l.CKA_LABEL, value: u.object });
    if (u.id !== undefined) common.push({ type: l.CKA_ID, value: u.id });
    withShared(() =>
      p11.C_GenerateKeyPair(
        probe,
        { mechanism: l.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          ...common,
          { type: l.CKA_MODULUS_BITS, value: bits },
          { type: l.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: l.CKA_VERIFY, value: true },
          { type: l.CKA_ENCRYPT, value: true },
        ],
        [
          ...common,
          { type: l.CKA_PRIVATE, value: true },
          { type: l.CKA_SENSITIVE, value: true },
          { type: l.CKA_EXTRACTABLE, value: false },
          { type: l.CKA_SIGN, value: true },
          { type: l.CKA_DECRYPT, value: true },
          { type: l.CKA_UNWRAP, value: false },
          { type: l.CKA_DERIVE, value: false },
        ],
      ),
    );
  } catch (e) {
    if (e instanceof Pkcs11SetupError) throw e;
    throw new Pkcs11SetupError(`${formatPkcs11Uri(u)}: key generation failed (${ckr(e)})`);
  } finally {
    try {
      withShared(() => p11.C_CloseSession(probe));
    } catch {
      // ignore
    }
  }
  return new Pkcs11Key(u, pin);
}

/** A logged-in read-write session on the URI's token (for key generation). */
function findSessionFor(u: Pkcs11Uri, pin: string, mod: Pkcs11Module): P11.Handle {
  const { p11, lib: l } = mod;
  return withShared(() => {
    for (const s of p11.C_GetSlotList(true)) {
      let ti: P11.TokenInfo;
      try {
        ti = p11.C_GetTokenInfo(s);
      } catch {
        continue;
      }
      if (u.token !== undefined && trim(ti.label) !== u.token) continue;
      if (u.serial !== undefined && trim(ti.serialNumber) !== u.serial) continue;
      const session = p11.C_OpenSession(s, l.CKF_SERIAL_SESSION | l.CKF_RW_SESSION);
      try {
        p11.C_Login(session, l.CKU_USER, pin);
      } catch (e) {
        if (ckr(e) !== 'CKR_USER_ALREADY_LOGGED_IN') {
          p11.C_CloseSession(session);
          throw new Pkcs11SetupError(`${formatPkcs11Uri(u)}: login failed (${ckr(e)})`);
        }
      }
      return session;
    }
    throw new Pkcs11SetupError(`${formatPkcs11Uri(u)}: no such token is present`);
  });
}
