/**
 * An `ObjectStore` on S3 or an S3-compatible server (MinIO): the segment store of the
 * distributed deployment. The only file that imports the AWS SDK.
 *
 * Keys are passed through as given (`default/orders/0/segment-….kfs`), after an optional
 * `keyPrefix`. Requests:
 *
 * - at most `maxConcurrency` in flight (a semaphore; at most `maxQueuedRequests` wait for it);
 * - each attempt bounded by `requestTimeoutMs`, connecting included (aborted through an
 *   `AbortSignal`);
 * - sent with the runtime's `fetch` (the SDK's `FetchHttpHandler`). The SDK's Node handler, on
 *   Deno's `node:http`, kept a connection-pool slot for every request aborted in flight: after a
 *   few S3 outages every request waited for a slot that never came, and the broker could no
 *   longer list or read (found by the 30-minute soak);
 * - retried up to `maxAttempts` times with exponential backoff and full jitter on 5xx, 429,
 *   throttling (`503 SlowDown`), 409 conflicts (S3 answers a conditional write racing another
 *   with `409 ConditionalRequestConflict`), timeouts and network errors; never on other 4xx. The
 *   SDK's own retries are off, so the bound is ours: an operation gives up after at most
 *   `maxAttempts × (requestTimeoutMs + retryMaxDelayMs)`.
 *
 * Conditional create (`ifNoneMatch`) is S3's `If-None-Match: *`: `412` becomes
 * `PreconditionFailedError`. With `conditionalPut: "auto"` (the default) the store probes once
 * whether the server enforces it (two creates of one probe object; the second must fail with
 * 412) and caches the answer; `"on"` / `"off"` skip the probe. A conditional put that is retried
 * after an attempt whose outcome is unknown (a timeout, a reset connection) and then gets 412
 * reads the object back: if it holds exactly our bytes, the earlier attempt won and the put
 * succeeds; otherwise the key was taken by someone else.
 *
 * SSE-KMS is used for every put when `kmsKeyId` is set.
 *
 * Every SDK or network failure surfaces as `ObjectStoreError` naming the operation, the key,
 * the bucket and the endpoint.
 *
 * Must not import anything that knows about Kafka messages.
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
} from "@aws-sdk/client-s3";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import { type Clock, SystemClock, type TimerHandle } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import {
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  PreconditionFailedError,
  type PutOptions,
} from "./object_store.ts";

export const S3_REGION_DEFAULT = "us-east-1";
/** Requests in flight at once. */
export const S3_MAX_CONCURRENCY_DEFAULT = 32;
/** Upper bound accepted for `maxConcurrency`. */
export const S3_MAX_CONCURRENCY_LIMIT = 1_024;
/** Requests waiting for a free slot before new ones are refused. */
export const S3_MAX_QUEUED_REQUESTS_DEFAULT = 10_000;
/** Bound on one attempt of one request, body included. */
export const S3_REQUEST_TIMEOUT_MS_DEFAULT = 10_000;
/** Attempts per operation, the first included. */
export const S3_MAX_ATTEMPTS_DEFAULT = 4;
/** Upper bound accepted for `maxAttempts`. */
export const S3_MAX_ATTEMPTS_LIMIT = 20;
/** Backoff before the second attempt is drawn from [0, base]; it doubles per attempt. */
export const S3_RETRY_BASE_DELAY_MS_DEFAULT = 50;
/** Cap on one backoff. */
export const S3_RETRY_MAX_DELAY_MS_DEFAULT = 2_000;
/** Keys per ListObjectsV2 page (S3's maximum). */
const LIST_PAGE_KEYS = 1_000;
/** Bound on the pages one `list` reads: 10 million keys. */
const LIST_MAX_PAGES = 10_000;
/** Where the conditional-put probe object lives, under `keyPrefix`. */
const PROBE_KEY_PREFIX = ".kafscale-probe/conditional-put-";

export type ConditionalPutMode = "auto" | "on" | "off";

export interface S3ObjectStoreSettings {
  bucket: string;
  /** Default `us-east-1`. */
  region?: string;
  /** URL of an S3-compatible server (`http://127.0.0.1:9000`); AWS when not set. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which MinIO needs. Default false. */
  forcePathStyle?: boolean;
  /** Static credentials; when not set, the SDK's default chain (environment, profile, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Prepended to every key (`"cluster-a/"`); listed keys come back without it. Default "". */
  keyPrefix?: string;
  /** SSE-KMS key for every put; server-side default encryption when not set. */
  kmsKeyId?: string;
  /** Whether `If-None-Match: *` is enforced: probed once (`auto`, default), or configured. */
  conditionalPut?: ConditionalPutMode;
  maxConcurrency?: number;
  maxQueuedRequests?: number;
  requestTimeoutMs?: number;
  maxAttempts?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
}

export interface S3ObjectStoreDeps {
  logger?: Logger;
  clock?: Clock;
  /** Uniform in [0, 1), for backoff jitter; injectable for deterministic tests. */
  random?: () => number;
}

/** What one failed attempt means for the operation. */
interface Failure {
  retriable: boolean;
  /** The request may have been applied although no answer came back. */
  ambiguous: boolean;
  status: number | undefined;
  reason: string;
  error: unknown;
}

export class S3ObjectStore implements ObjectStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #endpointLabel: string;
  readonly #keyPrefix: string;
  readonly #kmsKeyId: string | undefined;
  readonly #mode: ConditionalPutMode;
  readonly #requestTimeoutMs: number;
  readonly #maxAttempts: number;
  readonly #retryBaseDelayMs: number;
  readonly #retryMaxDelayMs: number;
  readonly #semaphore: Semaphore;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #random: () => number;
  /** Aborts of attempts in flight, so `close()` can end them. */
  readonly #inFlight = new Set<AbortController>();
  /** Backoff timers, so `close()` can end them. */
  readonly #sleeps = new Set<{ timer: TimerHandle; wake: () => void }>();
  #conditionalPut: boolean | null;
  #detection: Promise<boolean> | null = null;
  #closed = false;

  /**
   * Does no I/O. Prefer `S3ObjectStore.open`, which also checks the bucket and, in `auto` mode,
   * detects conditional-put support; constructed directly in `auto` mode the store reports
   * `supportsConditionalPut === false` until `detectConditionalPut()` has run (a conditional
   * put runs it first).
   */
  constructor(settings: S3ObjectStoreSettings, deps: S3ObjectStoreDeps = {}) {
    validateSettings(settings);
    this.#bucket = settings.bucket;
    const region = settings.region ?? S3_REGION_DEFAULT;
    this.#endpointLabel = settings.endpoint ?? `https://s3.${region}.amazonaws.com`;
    this.#keyPrefix = settings.keyPrefix ?? "";
    this.#kmsKeyId = settings.kmsKeyId;
    this.#mode = settings.conditionalPut ?? "auto";
    this.#conditionalPut = this.#mode === "auto" ? null : this.#mode === "on";
    this.#requestTimeoutMs = settings.requestTimeoutMs ?? S3_REQUEST_TIMEOUT_MS_DEFAULT;
    this.#maxAttempts = settings.maxAttempts ?? S3_MAX_ATTEMPTS_DEFAULT;
    this.#retryBaseDelayMs = settings.retryBaseDelayMs ?? S3_RETRY_BASE_DELAY_MS_DEFAULT;
    this.#retryMaxDelayMs = settings.retryMaxDelayMs ?? S3_RETRY_MAX_DELAY_MS_DEFAULT;
    const maxConcurrency = settings.maxConcurrency ?? S3_MAX_CONCURRENCY_DEFAULT;
    this.#semaphore = new Semaphore(
      maxConcurrency,
      settings.maxQueuedRequests ?? S3_MAX_QUEUED_REQUESTS_DEFAULT,
    );
    this.#logger = deps.logger ?? silentLogger;
    this.#clock = deps.clock ?? new SystemClock();
    this.#random = deps.random ?? Math.random;
    this.#client = new S3Client({
      region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.forcePathStyle ?? false,
      credentials: settings.credentials,
      // Retries are ours (bounded, with jitter, and aware of conditional puts).
      maxAttempts: 1,
      requestHandler: new FetchHttpHandler({ requestTimeout: this.#requestTimeoutMs }),
    });
  }

  /**
   * Creates the store, checks that the bucket is reachable (`checkBucket`) and, in `auto` mode,
   * detects conditional-put support. Closes the client again when a check fails.
   */
  static async open(
    settings: S3ObjectStoreSettings,
    deps: S3ObjectStoreDeps = {},
  ): Promise<S3ObjectStore> {
    const store = new S3ObjectStore(settings, deps);
    try {
      await store.checkBucket();
      if (store.#mode === "auto") {
        await store.detectConditionalPut().catch((error) => {
          const reason = error instanceof Error ? error.message : String(error);
          throw new ObjectStoreError(
            `Cannot start: probing whether S3 bucket "${store.#bucket}" at ` +
              `"${store.#endpointLabel}" enforces conditional puts failed: ${reason}; fix the ` +
              `cause, or set the conditional-put mode to "on" or "off" to skip the probe`,
            { cause: error },
          );
        });
      }
      return store;
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  get bucket(): string {
    return this.#bucket;
  }

  get supportsConditionalPut(): boolean {
    return this.#conditionalPut === true;
  }

  /**
   * Fails fast, with a message that says what to fix, when the bucket is missing, the
   * credentials are refused or the endpoint does not answer.
   */
  async checkBucket(): Promise<void> {
    await this.#request(
      "check bucket",
      "",
      (signal) =>
        this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }), {
          abortSignal: signal,
        }),
      (failure, attempts) => {
        const hint = failure.status === 404
          ? "the bucket does not exist; create it or fix the bucket name"
          : failure.status === 403 || failure.status === 401
          ? "access denied; check the credentials (static keys or AWS_* environment variables)"
          : failure.status === 301 || failure.status === 400
          ? "the bucket answered with an error; check the region and the path-style setting"
          : "check the endpoint URL and that the server runs";
        const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
        return new ObjectStoreError(
          `Cannot start: S3 bucket "${this.#bucket}" at "${this.#endpointLabel}" is not ` +
            `reachable: ${failure.reason}${tries}; ${hint}`,
          { cause: failure.error },
        );
      },
    );
  }

  /**
   * Whether the server enforces `If-None-Match: *` on PUT: probed once by creating one probe
   * object twice, then cached. Returns the configured answer in `on` / `off` mode.
   */
  detectConditionalPut(): Promise<boolean> {
    if (this.#conditionalPut !== null) return Promise.resolve(this.#conditionalPut);
    this.#detection ??= this.#probeConditionalPut().then(
      (supported) => {
        this.#conditionalPut = supported;
        this.#logger.info("Detected S3 conditional-put support", {
          bucket: this.#bucket,
          endpoint: this.#endpointLabel,
          supported,
        });
        return supported;
      },
      (error) => {
        this.#detection = null; // try again on the next call
        throw error;
      },
    );
    return this.#detection;
  }

  async get(key: string): Promise<Uint8Array | null> {
    const fullKey = this.#fullKey(key);
    return await this.#request("read", key, async (signal) => {
      try {
        const response = await this.#client.send(
          new GetObjectCommand({ Bucket: this.#bucket, Key: fullKey }),
          { abortSignal: signal },
        );
        return await readBody(response.Body);
      } catch (error) {
        if (statusOf(error) === 404) return null;
        throw error;
      }
    });
  }

  async getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array | null> {
    const fullKey = this.#fullKey(key);
    const from = Math.max(0, Math.floor(start));
    const to = Math.floor(endExclusive);
    if (to <= from) return await this.#exists(key, fullKey) ? new Uint8Array(0) : null;
    return await this.#request("read", key, async (signal) => {
      try {
        const response = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.#bucket,
            Key: fullKey,
            Range: `bytes=${from}-${to - 1}`,
          }),
          { abortSignal: signal },
        );
        return await readBody(response.Body);
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) return null;
        // The range starts at or past the end (always so for an empty object).
        if (status === 416) return new Uint8Array(0);
        throw error;
      }
    });
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    const fullKey = this.#fullKey(key);
    const conditional = options.ifNoneMatch === true && await this.#conditionalPutEnforced(key);
    const input: PutObjectCommandInput = {
      Bucket: this.#bucket,
      Key: fullKey,
      Body: data,
      ContentLength: data.length,
    };
    if (conditional) input.IfNoneMatch = "*";
    if (this.#kmsKeyId !== undefined) {
      input.ServerSideEncryption = "aws:kms";
      input.SSEKMSKeyId = this.#kmsKeyId;
    }
    await this.#request("write", key, async (signal, earlierOutcomeUnknown) => {
      try {
        await this.#client.send(new PutObjectCommand(input), { abortSignal: signal });
      } catch (error) {
        if (!conditional || statusOf(error) !== 412) throw error;
        // An earlier attempt of ours may have created it before its answer was lost.
        if (earlierOutcomeUnknown && await this.#holds(key, fullKey, data)) return;
        throw new PreconditionFailedError(key);
      }
    });
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    this.#checkOpen();
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    for (let page = 0;; page++) {
      if (page >= LIST_MAX_PAGES) {
        throw new ObjectStoreError(
          `Cannot list prefix "${prefix}" in S3 bucket "${this.#bucket}": more than ` +
            `${LIST_MAX_PAGES * LIST_PAGE_KEYS} keys; list a narrower prefix`,
        );
      }
      const response = await this.#request("list", prefix, (signal) =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#keyPrefix + prefix,
            MaxKeys: LIST_PAGE_KEYS,
            ContinuationToken: token,
          }),
          { abortSignal: signal },
        ));
      for (const object of response.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.#keyPrefix)) continue;
        out.push({ key: object.Key.slice(this.#keyPrefix.length), size: object.Size ?? 0 });
      }
      token = response.IsTruncated ? response.NextContinuationToken : undefined;
      if (token === undefined) break;
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const fullKey = this.#fullKey(key);
    await this.#request("delete", key, async (signal) => {
      try {
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: fullKey }), {
          abortSignal: signal,
        });
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#semaphore.close(() => this.#closedError());
    for (const controller of this.#inFlight) controller.abort();
    for (const sleep of this.#sleeps) {
      sleep.timer.cancel();
      sleep.wake();
    }
    this.#client.destroy();
    return Promise.resolve();
  }

  async #exists(key: string, fullKey: string): Promise<boolean> {
    return await this.#request("read", key, async (signal) => {
      try {
        await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: fullKey }), {
          abortSignal: signal,
        });
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
    });
  }

  /** Whether the object holds exactly `data`. */
  async #holds(key: string, fullKey: string, data: Uint8Array): Promise<boolean> {
    const signal = new AbortController();
    this.#inFlight.add(signal);
    const timer = this.#clock.setTimeout(() => signal.abort(), this.#requestTimeoutMs);
    try {
      const response = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: fullKey }),
        { abortSignal: signal.signal },
      );
      return bytesEqual(await readBody(response.Body), data);
    } catch (error) {
      throw this.#error("verify", key, classify(error), 1);
    } finally {
      timer.cancel();
      this.#inFlight.delete(signal);
    }
  }

  async #conditionalPutEnforced(key: string): Promise<boolean> {
    if (this.#conditionalPut !== null) return this.#conditionalPut;
    try {
      return await this.detectConditionalPut();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ObjectStoreError(
        `Cannot write object "${key}" create-only: detecting conditional-put support failed: ` +
          reason,
        { cause: error },
      );
    }
  }

  /**
   * Creates one probe object twice with `If-None-Match: *`: enforced when the second create gets
   * 412. A server that refuses the header outright (400, 501) is told apart from one that
   * refuses the request for another reason (a KMS key it cannot use, a policy, a wrong region)
   * by sending the same create without the header: if that succeeds, the header was the
   * problem ("not supported"); if it fails too, the probe fails with that error. Issue 17: every
   * 400 used to mean "not supported", which silently turned fencing off.
   */
  async #probeConditionalPut(): Promise<boolean> {
    const key = `${PROBE_KEY_PREFIX}${randomHex(8)}`;
    const fullKey = this.#fullKey(key);
    const body = new TextEncoder().encode("kafscale conditional-put probe");
    const create = (conditional: boolean) =>
      this.#request("probe conditional put with", key, async (signal) => {
        try {
          await this.#client.send(
            new PutObjectCommand({
              Bucket: this.#bucket,
              Key: fullKey,
              Body: body,
              ContentLength: body.length,
              ...(conditional ? { IfNoneMatch: "*" } : {}),
              ...(this.#kmsKeyId === undefined
                ? {}
                : { ServerSideEncryption: "aws:kms", SSEKMSKeyId: this.#kmsKeyId }),
            }),
            { abortSignal: signal },
          );
          return { outcome: "created" as const };
        } catch (error) {
          const status = statusOf(error);
          if (conditional && status === 412) return { outcome: "refused" as const };
          // A final refusal (not retried): the header, or something else; the caller finds out.
          if (conditional && status !== undefined && (status === 501 || isFinal4xx(status))) {
            return { outcome: "rejected" as const, error };
          }
          throw error;
        }
      });
    try {
      const first = await create(true);
      if (first.outcome === "rejected") {
        await create(false); // throws when the request fails without the header too
        this.#logger.warn("The S3 server refuses conditional puts", {
          bucket: this.#bucket,
          endpoint: this.#endpointLabel,
          answer: classify(first.error).reason,
        });
        return false;
      }
      if (first.outcome !== "created") return false;
      return (await create(true)).outcome === "refused";
    } finally {
      await this.delete(key).catch((error) => {
        this.#logger.warn("Cannot delete the conditional-put probe object", {
          key: fullKey,
          error: String(error),
        });
      });
    }
  }

  /**
   * Runs `attempt` with a concurrency slot and a timeout, retrying retriable failures with
   * exponential backoff and full jitter; maps the final failure to `ObjectStoreError`.
   * `attempt` learns whether an earlier attempt may have been applied without an answer.
   */
  async #request<T>(
    operation: string,
    key: string,
    attempt: (signal: AbortSignal, earlierOutcomeUnknown: boolean) => Promise<T>,
    toError: (failure: Failure, attempts: number) => ObjectStoreError = (failure, attempts) =>
      this.#error(operation, key, failure, attempts),
  ): Promise<T> {
    this.#checkOpen();
    let outcomeUnknown = false;
    for (let n = 1;; n++) {
      let failure: Failure;
      try {
        return await this.#attempt((signal) => attempt(signal, outcomeUnknown));
      } catch (error) {
        if (error instanceof ObjectStoreError) throw error;
        failure = classify(error);
      }
      if (failure.ambiguous) outcomeUnknown = true;
      if (this.#closed) throw this.#closedError();
      if (!failure.retriable || n >= this.#maxAttempts) throw toError(failure, n);
      const cap = Math.min(this.#retryMaxDelayMs, this.#retryBaseDelayMs * 2 ** (n - 1));
      const delayMs = Math.floor(this.#random() * cap);
      this.#logger.debug("Retrying S3 request", {
        operation,
        key,
        attempt: n,
        delayMs,
        reason: failure.reason,
      });
      await this.#sleep(delayMs);
      if (this.#closed) throw this.#closedError();
    }
  }

  async #attempt<T>(attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    await this.#semaphore.acquire();
    const controller = new AbortController();
    this.#inFlight.add(controller);
    let timedOut = false;
    const timer = this.#clock.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#requestTimeoutMs);
    try {
      return await attempt(controller.signal);
    } catch (error) {
      if (timedOut) throw new RequestTimeoutError(this.#requestTimeoutMs, error);
      throw error;
    } finally {
      timer.cancel();
      this.#inFlight.delete(controller);
      this.#semaphore.release();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleep = {
        timer: this.#clock.setTimeout(() => {
          this.#sleeps.delete(sleep);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.#sleeps.add(sleep);
    });
  }

  #fullKey(key: string): string {
    this.#checkOpen();
    if (key === "") throw new TypeError('Invalid object key "": S3 keys cannot be empty');
    return this.#keyPrefix + key;
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): ObjectStoreError {
    return new ObjectStoreError(
      `S3 object store for bucket "${this.#bucket}" at "${this.#endpointLabel}" is closed`,
    );
  }

  #error(operation: string, key: string, failure: Failure, attempts: number): ObjectStoreError {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
    const hint = failure.retriable
      ? "the store may be down, slow or throttling; retry later"
      : failure.status === 403
      ? "check the credentials and the bucket policy"
      : "check the bucket, endpoint and region settings";
    return new ObjectStoreError(
      `Cannot ${operation} object "${key}" in S3 bucket "${this.#bucket}" at ` +
        `"${this.#endpointLabel}": ${failure.reason}${tries}; ${hint}`,
      { cause: failure.error },
    );
  }
}

/** An attempt aborted by our per-request timeout. */
class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
  constructor(timeoutMs: number, cause: unknown) {
    super(`no answer within ${timeoutMs} ms`, { cause });
  }
}

/** Bounded counting semaphore with a bounded FIFO of waiters. */
class Semaphore {
  readonly #limit: number;
  readonly #maxWaiters: number;
  readonly #waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #held = 0;
  #closedError: (() => Error) | null = null;

  constructor(limit: number, maxWaiters: number) {
    this.#limit = limit;
    this.#maxWaiters = maxWaiters;
  }

  acquire(): Promise<void> {
    if (this.#closedError) return Promise.reject(this.#closedError());
    if (this.#held < this.#limit) {
      this.#held++;
      return Promise.resolve();
    }
    if (this.#waiters.length >= this.#maxWaiters) {
      return Promise.reject(
        new ObjectStoreError(
          `Too many S3 requests: ${this.#limit} in flight and ${this.#maxWaiters} waiting; ` +
            `retry later or raise "maxQueuedRequests"`,
        ),
      );
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(); // the slot passes to the waiter
    else this.#held--;
  }

  close(error: () => Error): void {
    this.#closedError = error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error());
  }
}

/** A 4xx that is not retried (409 and 429 are). */
function isFinal4xx(status: number): boolean {
  return status >= 400 && status < 500 && status !== 409 && status !== 429;
}

/** HTTP status of an SDK error, if the server answered. */
function statusOf(error: unknown): number | undefined {
  const metadata = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata;
  return typeof metadata?.httpStatusCode === "number" ? metadata.httpStatusCode : undefined;
}

const RETRIABLE_NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EADDRNOTAVAIL",
]);
/** Codes that prove the request never left this host. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND"]);
const RETRIABLE_ERROR_NAMES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
  "RequestTimeoutError",
]);

function classify(error: unknown): Failure {
  const status = statusOf(error);
  const name = (error as { name?: unknown } | null)?.name;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (status !== undefined) {
    const label = typeof name === "string" && name !== "Unknown" && name !== "UnknownError"
      ? ` ${name}`
      : "";
    const detail = message && message !== "UnknownError" && message !== name ? `: ${message}` : "";
    const retriable = status >= 500 || status === 429 || status === 409 ||
      (typeof name === "string" && RETRIABLE_ERROR_NAMES.has(name));
    return {
      retriable,
      // A 503 (SlowDown, unavailable) was refused, not applied; other 5xx may have been.
      ambiguous: status >= 500 && status !== 503,
      status,
      reason: `HTTP ${status}${label}${detail}`,
      error,
    };
  }
  if (error instanceof RequestTimeoutError) {
    return { retriable: true, ambiguous: true, status, reason: error.message, error };
  }
  if (typeof code === "string" && RETRIABLE_NETWORK_CODES.has(code)) {
    return {
      retriable: true,
      ambiguous: !NOT_SENT_CODES.has(code),
      status,
      reason: message,
      error,
    };
  }
  if (typeof name === "string" && RETRIABLE_ERROR_NAMES.has(name)) {
    return { retriable: true, ambiguous: true, status, reason: message, error };
  }
  // fetch's own failure: "fetch failed", the transport's words in `cause`. A failed connect
  // ("client error (Connect)") sent nothing; anything later may have reached the server.
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (error instanceof TypeError && cause instanceof Error) {
    const connect = /\(Connect\)(?:: tcp connect error)?: (.*)$/.exec(cause.message);
    return {
      retriable: true,
      ambiguous: connect === null,
      status,
      reason: connect ? `cannot connect: ${connect[1]}` : `${message}: ${cause.message}`,
      error,
    };
  }
  // Anything else without an HTTP answer (a socket hang-up, a truncated body) is a network
  // problem too; configuration mistakes come back as HTTP errors.
  const network = typeof code === "string" ||
    /socket|network|connect|stream|aborted/i.test(message);
  return { retriable: network, ambiguous: true, status, reason: message, error };
}

/** The whole body as a plain `Uint8Array` (never a Node `Buffer`, whose prototype differs). */
async function readBody(body: unknown): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  const bytes = await (body as { transformToByteArray(): Promise<Uint8Array> })
    .transformToByteArray();
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes);
}

function validateSettings(settings: S3ObjectStoreSettings): void {
  if (typeof settings.bucket !== "string" || settings.bucket === "") {
    throw new TypeError('S3 setting "bucket" is required; set "--s3-bucket"');
  }
  if (settings.endpoint !== undefined) {
    let url: URL | null = null;
    try {
      url = new URL(settings.endpoint);
    } catch {
      // Reported below.
    }
    if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new TypeError(
        `S3 setting "endpoint" must be an http:// or https:// URL, got "${settings.endpoint}"`,
      );
    }
  }
  const mode = settings.conditionalPut;
  if (mode !== undefined && mode !== "auto" && mode !== "on" && mode !== "off") {
    throw new TypeError(
      `S3 setting "conditionalPut" must be "auto", "on" or "off", got "${mode}"`,
    );
  }
  checkInteger("maxConcurrency", settings.maxConcurrency, 1, S3_MAX_CONCURRENCY_LIMIT);
  checkInteger("maxQueuedRequests", settings.maxQueuedRequests, 0, 1_000_000);
  checkInteger("requestTimeoutMs", settings.requestTimeoutMs, 1, 3_600_000);
  checkInteger("maxAttempts", settings.maxAttempts, 1, S3_MAX_ATTEMPTS_LIMIT);
  checkInteger("retryBaseDelayMs", settings.retryBaseDelayMs, 0, 3_600_000);
  checkInteger("retryMaxDelayMs", settings.retryMaxDelayMs, 0, 3_600_000);
}

function checkInteger(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `S3 setting "${name}" must be an integer from ${min} to ${max}, got ${value}`,
    );
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
