/**
 * Coalesced postMessage between the HTTP thread and the enrollment workers: every message sent
 * to one port during one event-loop turn goes out as ONE postMessage (an array, in order), at
 * the end of the turn (setImmediate).
 *
 * A postMessage has a fixed cost on both sides (serialisation, waking the receiving thread,
 * one 'message' event) that dwarfs the small messages of the pool (store calls and results,
 * lock checks, answers). Under load they come in bursts — a group commit resolves the store
 * writes of several enrollments at once; a message carrying several results lets the worker
 * sign several certificates in one turn, whose `recordIssued` calls again leave together and
 * land in one commit. Order is kept, so nothing observable changes but the number of hops.
 */

/** A batch as it crosses the thread boundary. */
export type Batch<T> = readonly T[];

export class MessageBatcher<T> {
  private queue: T[] = [];
  private transfer: ArrayBuffer[] = [];
  private scheduled = false;

  /** `post` sends one batch with its transferList (the concatenated lists of its messages). */
  constructor(private readonly post: (batch: Batch<T>, transfer: ArrayBuffer[]) => void) {}

  /** Queues `m`; it leaves with everything else sent before this turn ends. */
  send(m: T, transfer?: readonly ArrayBuffer[]): void {
    this.queue.push(m);
    if (transfer && transfer.length > 0) this.transfer.push(...transfer);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Posts what is queued now (at the end of the turn, or at once before the thread exits). */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    const transfer = this.transfer;
    this.queue = [];
    this.transfer = [];
    this.post(batch, transfer);
  }
}

/** The messages of what arrived on a port: a batch, or a single message posted directly. */
export function unbatch<T>(data: T | Batch<T>): readonly T[] {
  return Array.isArray(data) ? (data as Batch<T>) : [data as T];
}
