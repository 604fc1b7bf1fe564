/** Errors the store throws for conditions callers act on (the RA retries or answers). */

/** A certificate with this serial already exists; retry with a new serial. */
export class SerialConflictError extends Error {
  constructor(readonly serial: string) {
    super(`certificate serial ${serial} already exists`);
    this.name = 'SerialConflictError';
  }
}

/** The transaction was already issued (possibly by another writer); answer with `serial`. */
export class AlreadyIssuedError extends Error {
  constructor(
    readonly transactionId: string,
    readonly serial: string,
  ) {
    super(`transaction ${transactionId} already issued certificate ${serial}`);
    this.name = 'AlreadyIssuedError';
  }
}

/** The transaction is unknown (state null) or in a state that cannot be issued. */
export class TransactionStateError extends Error {
  constructor(
    readonly transactionId: string,
    readonly state: string | null,
  ) {
    super(
      state === null ? `transaction ${transactionId} is unknown` : `transaction ${transactionId} is ${state}`,
    );
    this.name = 'TransactionStateError';
  }
}

/**
 * `recordIssued` with `open`: the transaction was to be opened by that write, but its
 * transactionID exists already (another request, or a resend racing this one). Nothing was
 * written; the caller takes the path for an existing transaction.
 */
export class TransactionExistsError extends Error {
  constructor(readonly transactionId: string) {
    super(`transaction ${transactionId} exists already`);
    this.name = 'TransactionExistsError';
  }
}

/** A unique key (secret hash, ...) already exists. */
export class DuplicateKeyError extends Error {
  constructor(readonly what: string) {
    super(`${what} already exists`);
    this.name = 'DuplicateKeyError';
  }
}
