/**
 * Durability of a WAL-mode SQLite database without blocking the event loop: SQLite commits
 * with synchronous=NORMAL (frames written to the WAL, no fsync) and this syncer then fsyncs
 * the WAL file on the libuv thread pool. Once it returns, everything committed before it
 * started is on disk — the same guarantee synchronous=FULL gives (FULL fsyncs the WAL at each
 * commit), and checkpoints stay safe because with NORMAL SQLite itself syncs the WAL before
 * and the database after every checkpoint.
 *
 * The WAL keeps its inode while connections are open (checkpoints rewrite it from the start,
 * journal_size_limit truncates it); should it ever be replaced, the next sync reopens it.
 */
import { close, closeSync, fstatSync, fsync, openSync, statSync } from 'node:fs';
import type { CommitSyncer } from './group-commit.js';

export class WalSyncer implements CommitSyncer {
  private fd: number | undefined;
  private ino = 0;

  constructor(private readonly walPath: string) {}

  private open(): number {
    const st = this.fd === undefined ? undefined : statSync(this.walPath, { throwIfNoEntry: false });
    if (this.fd !== undefined && st && st.ino === this.ino) return this.fd;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = openSync(this.walPath, 'r');
    this.ino = fstatSync(this.fd).ino;
    return this.fd;
  }

  sync(done: (err: Error | null) => void): void {
    let fd: number;
    try {
      fd = this.open();
    } catch (e) {
      this.fd = undefined;
      done(e as Error);
      return;
    }
    fsync(fd, (err) => done(err));
  }

  /** Closes the file descriptor (after the last sync finished). */
  close(): void {
    if (this.fd !== undefined) close(this.fd, () => undefined);
    this.fd = undefined;
  }
}
