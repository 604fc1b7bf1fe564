/**
 * Writing keys and certificates so that no reader ever sees a half-written file, and (for the
 * agent) so that key and certificate on disk are always a matching pair.
 *
 * `writeFileAtomic`: temp file in the same directory (created 0600 or the given mode, never
 * wider while being written), write, fsync, rename over the target, fsync the directory.
 *
 * Generations (agent): every renewal writes a complete new directory
 * `<out>/.generations/<id>/{key,cert,chain}.pem`, fsyncs it, checks that the key matches the
 * certificate, and only then swaps the `<out>/current` symlink with one atomic rename.
 * `<out>/key.pem`, `cert.pem` and `chain.pem` are stable symlinks into `current/`.
 * Crash window: before the rename the old pair is live, after it the new one; a crash in
 * between leaves an unused generation directory that the next run removes. A reader that
 * opens key.pem and cert.pem while the link swaps may still get the old key with the new
 * certificate (two opens are never atomic); readers that need that guarantee open
 * `current/` once (e.g. resolve it with realpath) and read both files from there.
 * The previous generation is kept until the next swap so such a reader never hits a
 * missing file.
 */
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { promises as fs, constants as fsc } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fromPem, parseCertificate, toPem, type Certificate } from '../pkix/certificate.js';

async function fsyncDir(dir: string): Promise<void> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(dir, fsc.O_RDONLY);
    await h.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    await h?.close();
  }
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
}

/**
 * Atomically replaces `path` with `data` (mode default 0644; use 0600 for keys). Creates the
 * parent directory when missing.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = tempName(path);
  const h = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode & 0o600);
  try {
    await h.writeFile(data);
    await h.chmod(mode);
    await h.sync();
  } catch (e) {
    await h.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** PEM of a private key (PKCS#8, unencrypted). */
export function keyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** PEM of certificates, concatenated. */
export function certsToPem(certs: readonly Certificate[]): string {
  return certs.map((c) => toPem(c.der)).join('');
}

/** True when `key` is the private key of `cert`. */
export function keyMatchesCert(key: KeyObject, cert: Certificate): boolean {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return spki.equals(cert.spki);
}

export interface PairFiles {
  key: KeyObject;
  certificate: Certificate;
  chain: readonly Certificate[];
}

/**
 * Writes key.pem (0600), cert.pem and chain.pem into `dir` (created 0755 if missing), each
 * atomically, key first. Used by the one-shot CLI commands.
 */
export async function writePairFiles(
  dir: string,
  p: PairFiles,
): Promise<{ key: string; cert: string; chain: string }> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const paths = { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem'), chain: join(dir, 'chain.pem') };
  await writeFileAtomic(paths.key, keyToPem(p.key), 0o600);
  await writeFileAtomic(paths.cert, certsToPem([p.certificate]));
  await writeFileAtomic(paths.chain, certsToPem(p.chain));
  return paths;
}

/** Reads `dir/key.pem` + `dir/cert.pem` (following symlinks); undefined when either is missing. */
export async function readPair(
  dir: string,
): Promise<{ key: KeyObject; certificate: Certificate } | undefined> {
  let keyPem: string;
  let certPem: string;
  try {
    // Resolve `current` once so both files come from the same generation when it exists.
    const base = await fs.realpath(join(dir, 'current')).catch(() => dir);
    keyPem = await fs.readFile(join(base, 'key.pem'), 'utf8');
    certPem = await fs.readFile(join(base, 'cert.pem'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const der = fromPem(certPem)[0];
  if (!der) throw new Error(`${join(dir, 'cert.pem')} holds no certificate`);
  return { key: createPrivateKey(keyPem), certificate: parseCertificate(der) };
}

const GENERATIONS = '.generations';

async function replaceSymlink(target: string, linkPath: string): Promise<void> {
  const tmp = tempName(linkPath);
  await fs.symlink(target, tmp);
  try {
    await fs.rename(tmp, linkPath);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

async function isSymlinkTo(path: string, target: string): Promise<boolean> {
  try {
    return (await fs.readlink(path)) === target;
  } catch {
    return false;
  }
}

/**
 * Installs a new key/certificate pair as a generation and makes it current with one atomic
 * symlink swap (see the module comment). Returns the paths of the stable names.
 */
export async function installGeneration(
  out: string,
  p: PairFiles,
): Promise<{ key: string; cert: string; chain: string; generation: string }> {
  if (!keyMatchesCert(p.key, p.certificate))
    throw new Error('refusing to install a key that does not match the certificate');
  await fs.mkdir(join(out, GENERATIONS), { recursive: true, mode: 0o755 });
  const id = `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
  const gen = join(out, GENERATIONS, id);
  await fs.mkdir(gen, { mode: 0o755 });
  await writeFileAtomic(join(gen, 'key.pem'), keyToPem(p.key), 0o600);
  await writeFileAtomic(join(gen, 'cert.pem'), certsToPem([p.certificate]));
  await writeFileAtomic(join(gen, 'chain.pem'), certsToPem(p.chain));
  await writeFileAtomic(join(gen, 'fullchain.pem'), certsToPem([p.certificate, ...p.chain]));
  await fsyncDir(gen);
  // Read back what is on disk: the pair must match before it goes live.
  const back = await readPair(gen);
  if (
    !back ||
    !keyMatchesCert(back.key, back.certificate) ||
    !back.certificate.der.equals(p.certificate.der)
  ) {
    await fs.rm(gen, { recursive: true, force: true });
    throw new Error('the written key/certificate pair does not read back consistently');
  }
  const previous = await fs.readlink(join(out, 'current')).catch(() => undefined);
  await replaceSymlink(join(GENERATIONS, id), join(out, 'current'));
  for (const f of ['key.pem', 'cert.pem', 'chain.pem', 'fullchain.pem']) {
    const want = join('current', f);
    if (!(await isSymlinkTo(join(out, f), want))) await replaceSymlink(want, join(out, f));
  }
  await fsyncDir(out);
  // Keep the new and the previous generation; drop older ones and crash leftovers.
  const keep = new Set([id, previous ? basename(previous) : '']);
  for (const name of await fs.readdir(join(out, GENERATIONS))) {
    if (!keep.has(name)) await fs.rm(join(out, GENERATIONS, name), { recursive: true, force: true });
  }
  return {
    key: join(out, 'key.pem'),
    cert: join(out, 'cert.pem'),
    chain: join(out, 'chain.pem'),
    generation: gen,
  };
}
