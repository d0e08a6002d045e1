/**
 * The metadata store: a small, strongly consistent key-value store with
 * revisions, multi-key compare-and-swap transactions, leases and watches —
 * the subset of etcd's model the broker needs.
 *
 * Implementations: in-memory (tests), embedded (durable file on one host),
 * etcd. Knows nothing about Kafka messages: topics, partition end offsets,
 * committed consumer offsets, groups and broker registrations are laid out
 * on top of it by `cluster_metadata.ts`.
 *
 * Operating failures (etcd unreachable, a failed fsync) surface as
 * `MetadataStoreError`; callers turn them into retriable Kafka error codes.
 */

export interface KvEntry {
  key: string;
  value: Uint8Array;
  /** Revision of the transaction that created the key (etcd `create_revision`). */
  createRevision: number;
  /** Revision of the last transaction that modified the key (etcd `mod_revision`). */
  modRevision: number;
  /** Number of writes since creation, starting at 1 (etcd `version`). */
  version: number;
  /** The lease the key is attached to, or 0. */
  lease: number;
}

/**
 * A condition of a transaction. `modRevision: 0` / `version: 0` mean "the
 * key does not exist".
 */
export type Compare =
  | { key: string; target: "modRevision"; equals: number }
  | { key: string; target: "version"; equals: number }
  | { key: string; target: "value"; equals: Uint8Array }
  | { key: string; target: "exists"; equals: boolean };

export type Operation =
  | { op: "put"; key: string; value: Uint8Array; lease?: number }
  | { op: "delete"; key: string }
  | { op: "deletePrefix"; prefix: string };

export interface TxnResult {
  succeeded: boolean;
  /** The store revision after the transaction: bumped when the branch that ran wrote something. */
  revision: number;
}

export type WatchEvent =
  | { type: "put"; entry: KvEntry }
  | { type: "delete"; key: string; modRevision: number };

export interface Lease {
  readonly id: number;
  readonly ttlMs: number;
}

export interface MetadataStore {
  get(key: string): Promise<KvEntry | null>;
  /** All live entries whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<KvEntry[]>;
  /** Unconditional put; returns the new revision. */
  put(key: string, value: Uint8Array, options?: { lease?: number }): Promise<number>;
  /** Unconditional delete; returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Deletes every key under `prefix`; returns how many were deleted. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Atomically: if every compare holds, apply `success`, else `failure`.
   * All operations of one branch become durable together.
   */
  txn(compares: Compare[], success: Operation[], failure?: Operation[]): Promise<TxnResult>;
  /** Grants a lease; keys attached to it vanish when it expires or is revoked. */
  grantLease(ttlMs: number): Promise<Lease>;
  /** Renews a lease; throws `LeaseExpiredError` if it is gone. */
  keepAlive(leaseId: number): Promise<void>;
  revokeLease(leaseId: number): Promise<void>;
  /**
   * Calls `onEvent` for every change under `prefix` after this call. Returns
   * a function that stops the watch.
   */
  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void;
  close(): Promise<void>;
}

/** An operating failure of the store: retriable from the caller's point of view. */
export class MetadataStoreError extends Error {
  override name = "MetadataStoreError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class LeaseExpiredError extends MetadataStoreError {
  override name = "LeaseExpiredError";
  constructor(readonly leaseId: number) {
    super(`Lease ${leaseId} has expired or was revoked`);
  }
}

/** Bound on the key and value bytes one transaction branch may write (etcd's default is 1.5 MiB). */
export const MAX_TXN_BYTES = 16 * 1024 * 1024;
/** Bound on the operations in one transaction branch (etcd's own default limit is 128). */
export const MAX_TXN_OPERATIONS = 10_000;

/**
 * Rejects a branch every backend must refuse the same way: one key written
 * twice (etcd's rule), a deletePrefix overlapping another write, or a branch
 * over the named limits. Throws TypeError/RangeError: these are caller bugs.
 */
export function validateTxnBranch(operations: readonly Operation[]): void {
  if (operations.length > MAX_TXN_OPERATIONS) {
    throw new RangeError(
      `Transaction has ${operations.length} operations; the limit is ${MAX_TXN_OPERATIONS}`,
    );
  }
  const keys = new Set<string>();
  const prefixes: string[] = [];
  let bytes = 0;
  for (const op of operations) {
    if (op.op === "deletePrefix") {
      prefixes.push(op.prefix);
      bytes += op.prefix.length;
      continue;
    }
    if (keys.has(op.key)) {
      throw new TypeError(`Invalid transaction: key "${op.key}" is written twice in one branch`);
    }
    keys.add(op.key);
    bytes += op.key.length + (op.op === "put" ? op.value.length : 0);
  }
  if (bytes > MAX_TXN_BYTES) {
    throw new RangeError(`Transaction writes ${bytes} bytes; the limit is ${MAX_TXN_BYTES}`);
  }
  for (const [i, prefix] of prefixes.entries()) {
    const clash = [...keys].find((key) => key.startsWith(prefix)) ??
      prefixes.find((other, j) => j !== i && other.startsWith(prefix));
    if (clash !== undefined) {
      throw new TypeError(
        `Invalid transaction: deletePrefix "${prefix}" overlaps "${clash}" in the same branch`,
      );
    }
  }
}
