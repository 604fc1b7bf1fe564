/**
 * Durable writes of key and certificate material: a power cut right after `scepter ca init`
 * (or a rollover) must leave either no file or the complete file, never an empty key.
 *
 * The content goes to a temporary file in the same directory (created exclusively with the
 * final mode), is fsynced, then linked (exclusive: fails if the target exists) or renamed into
 * place, and the directory is fsynced so the new entry itself survives.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface DurableWriteOptions {
  /** File mode (e.g. 0o600 for keys, 0o644 for certificates); applied whatever the umask. */
  mode: number;
  /**
   * Refuse to replace an existing file (EEXIST, like flag 'wx'); default true. False: atomically
   * replace it.
   */
  exclusive?: boolean;
}

/** fsyncs a directory so entries created, renamed or removed in it are on disk. Best effort on platforms that cannot. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Windows and some filesystems cannot open or fsync a directory.
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes `content` to `path` durably (see the module comment). Throws EEXIST when exclusive and `path` exists. */
export function writeFileDurably(path: string, content: string | Uint8Array, o: DurableWriteOptions): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', o.mode);
  try {
    try {
      const buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, o.mode); // umask-proof
    if (o.exclusive === false) {
      renameSync(tmp, path);
    } else {
      try {
        linkSync(tmp, path); // atomic, and fails with EEXIST like flag 'wx'
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
        // A filesystem without hard links: check, then rename (not atomic against a racer).
        if (existsSync(path))
          throw Object.assign(new Error(`EEXIST: file already exists, '${path}'`), { code: 'EEXIST' });
        renameSync(tmp, path);
      }
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // renamed into place, or already gone
    }
  }
  fsyncDir(dir);
}
