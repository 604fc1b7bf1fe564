/**
 * PKCS#11 URIs (RFC 7512): `pkcs11:token=CA;object=ca-key;id=%01?module-path=/usr/lib/x.so&pin-source=file:/etc/pin`.
 *
 * Path attributes (`;`-separated) pick the token and the key object; query attributes
 * (`&`-separated) say how to reach it: the module to load and where the PIN comes from. Values
 * are percent-decoded (`id` is bytes, everything else UTF-8). Unknown standard attributes, a
 * repeated attribute, a bad percent escape or a malformed URI are errors (a typo must not
 * select a different key); vendor attributes (`x-…`) are ignored, as RFC 7512 §2.3 allows.
 *
 * `pin-value` puts the PIN in the URI, so it ends up in shell history, process listings and
 * configuration files; it is refused unless the caller explicitly allows it, and
 * `formatPkcs11Uri` never writes it back.
 */

export class Pkcs11UriError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pkcs11UriError';
  }
}

export type Pkcs11ObjectType = 'private' | 'public' | 'cert' | 'secret-key' | 'data';

export interface Pkcs11Uri {
  /** Token label (CKA/CK_TOKEN_INFO label, compared after trimming the padding). */
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  /** Slot ID (decimal). */
  slotId?: number;
  /** CKA_LABEL of the object. */
  object?: string;
  /** CKA_ID of the object (bytes). */
  id?: Buffer;
  type?: Pkcs11ObjectType;
  /** Path of the PKCS#11 module (shared library). */
  modulePath?: string;
  /** PIN source: a `file:` URI or an absolute path. */
  pinSource?: string;
  /** The PIN itself: only when the caller allows it (see the module comment). */
  pinValue?: string;
}

const MAX_URI = 4096;
const PATH_ATTRS = new Set([
  'token',
  'manufacturer',
  'serial',
  'model',
  'slot-id',
  'object',
  'id',
  'type',
  // Accepted and ignored: they describe the library or slot, which module-path decides.
  'library-manufacturer',
  'library-description',
  'library-version',
  'slot-description',
  'slot-manufacturer',
]);
const QUERY_ATTRS = new Set(['module-path', 'module-name', 'pin-source', 'pin-value']);
const TYPES = new Set<Pkcs11ObjectType>(['private', 'public', 'cert', 'secret-key', 'data']);

/** Percent-decodes to bytes; throws for a malformed escape. */
function pctBytes(s: string, what: string): Buffer {
  const out: number[] = [];
  const utf8 = Buffer.from(s, 'utf8');
  for (let i = 0; i < utf8.length; i++) {
    const c = utf8[i]!;
    if (c === 0x25) {
      const hex = utf8.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Pkcs11UriError(`bad percent escape in ${what}`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(c);
    }
  }
  return Buffer.from(out);
}

function pctText(s: string, what: string): string {
  const b = pctBytes(s, what);
  const t = b.toString('utf8');
  if (!Buffer.from(t, 'utf8').equals(b)) throw new Pkcs11UriError(`${what} is not valid UTF-8`);
  if (/[\u0000-\u001f\u007f]/.test(t)) throw new Pkcs11UriError(`${what} contains control characters`);
  return t;
}

/**
 * Parses a PKCS#11 URI. `allowPinValue` accepts `pin-value` (discouraged: see the module
 * comment); without it a URI carrying a PIN is an error.
 */
export function parsePkcs11Uri(uri: string, opts: { allowPinValue?: boolean } = {}): Pkcs11Uri {
  if (uri.length > MAX_URI) throw new Pkcs11UriError('the PKCS#11 URI is too long');
  if (!/^pkcs11:/i.test(uri)) throw new Pkcs11UriError('a PKCS#11 URI starts with "pkcs11:"');
  const rest = uri.slice(7);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);
  if (pathPart.includes('#') || queryPart.includes('#'))
    throw new Pkcs11UriError('a PKCS#11 URI has no fragment');
  const out: Pkcs11Uri = {};
  const seen = new Set<string>();
  const take = (part: string, sep: string, known: Set<string>) => {
    if (part === '') return [];
    return part.split(sep).map((a) => {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new Pkcs11UriError(`malformed PKCS#11 URI attribute "${a.slice(0, 40)}"`);
      const name = a.slice(0, eq).toLowerCase();
      if (!known.has(name) && !name.startsWith('x-'))
        throw new Pkcs11UriError(`unknown PKCS#11 URI attribute "${name.slice(0, 40)}"`);
      if (seen.has(name)) throw new Pkcs11UriError(`the PKCS#11 URI repeats "${name}"`);
      seen.add(name);
      return [name, a.slice(eq + 1)] as const;
    });
  };
  for (const [name, raw] of take(pathPart, ';', PATH_ATTRS)) {
    switch (name) {
      case 'token':
        out.token = pctText(raw, name);
        break;
      case 'manufacturer':
        out.manufacturer = pctText(raw, name);
        break;
      case 'serial':
        out.serial = pctText(raw, name);
        break;
      case 'model':
        out.model = pctText(raw, name);
        break;
      case 'slot-id': {
        const t = pctText(raw, name);
        if (!/^\d{1,10}$/.test(t)) throw new Pkcs11UriError('slot-id must be a decimal number');
        out.slotId = Number(t);
        break;
      }
      case 'object':
        out.object = pctText(raw, name);
        break;
      case 'id':
        out.id = pctBytes(raw, name);
        if (out.id.length === 0) throw new Pkcs11UriError('id must not be empty');
        break;
      case 'type': {
        const t = pctText(raw, name) as Pkcs11ObjectType;
        if (!TYPES.has(t)) throw new Pkcs11UriError(`unknown object type "${t.slice(0, 20)}"`);
        out.type = t;
        break;
      }
      default:
        break;
    }
  }
  for (const [name, raw] of take(queryPart, '&', QUERY_ATTRS)) {
    if (name === 'module-path') out.modulePath = pctText(raw, name);
    else if (name === 'pin-source') out.pinSource = pctText(raw, name);
    else if (name === 'pin-value') {
      if (!opts.allowPinValue)
        throw new Pkcs11UriError(
          'the PKCS#11 URI carries pin-value: use pin-source=file:… or SCEPTER_PKCS11_PIN (or allow pin-value explicitly)',
        );
      out.pinValue = pctText(raw, name);
    } else if (name === 'module-name') {
      throw new Pkcs11UriError('module-name is not supported: give module-path');
    }
  }
  return out;
}

/** Characters left unescaped in values (RFC 7512 §2.3 pchar/qchar subsets, conservatively). */
function pct(value: string | Buffer): string {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let s = '';
  for (const c of b) {
    const ch = String.fromCharCode(c);
    s +=
      /[A-Za-z0-9\-._~:[\]@!$'()*+,/]/.test(ch) && typeof value === 'string'
        ? ch
        : `%${c.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return s;
}

/** The URI in canonical form; never with `pin-value` (the PIN is never written or logged). */
export function formatPkcs11Uri(u: Pkcs11Uri): string {
  const path: string[] = [];
  if (u.token !== undefined) path.push(`token=${pct(u.token)}`);
  if (u.manufacturer !== undefined) path.push(`manufacturer=${pct(u.manufacturer)}`);
  if (u.serial !== undefined) path.push(`serial=${pct(u.serial)}`);
  if (u.model !== undefined) path.push(`model=${pct(u.model)}`);
  if (u.slotId !== undefined) path.push(`slot-id=${u.slotId}`);
  if (u.object !== undefined) path.push(`object=${pct(u.object)}`);
  if (u.id !== undefined) path.push(`id=${pct(u.id)}`);
  if (u.type !== undefined) path.push(`type=${u.type}`);
  const query: string[] = [];
  if (u.modulePath !== undefined) query.push(`module-path=${pct(u.modulePath)}`);
  if (u.pinSource !== undefined) query.push(`pin-source=${pct(u.pinSource)}`);
  return `pkcs11:${path.join(';')}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}
