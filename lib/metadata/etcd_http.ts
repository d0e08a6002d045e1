/**
 * etcd v3's JSON gateway (`/v3/...` on every client URL, HTTP/1.1) reached with Deno's own
 * `fetch`: the transport of `EtcdMetadataStore`.
 *
 * Why not gRPC (`etcd3` on `@grpc/grpc-js`): on Deno 2.9.6, grpc-js goes through Deno's
 * `node:http2`, which crashed the process (SIGSEGV, or nghttp2's `find_stream_on_goaway_func`
 * assertion) in about one run in four after etcd was killed and restarted under a live client
 * (the "etcd killed -> ... restarted" test of tests/metadata/etcd_metadata_store_test.ts
 * reproduced it). A broker must outlive its etcd's restarts, so the store speaks etcd's gateway
 * over `fetch`, which is Deno's native HTTP client.
 *
 * The messages are etcd's protobuf messages in proto3 JSON with etcd's field names: `bytes` are
 * base64, 64-bit integers come back as decimal strings (sent as numbers: every value used here
 * is below 2^53), and fields at their default value are left out of answers (`?? 0` below).
 *
 * Failures: an answer with an error body becomes `EtcdHttpError` (etcd's message and gRPC code);
 * a connection failure becomes `EtcdUnreachableError`, after which a call with several endpoints
 * tries each other one once within its deadline; a deadline becomes `EtcdUnreachableError` too.
 * Credentials: with a user, a token from `/v3/auth/authenticate` goes in `Authorization`; one
 * that etcd no longer accepts is replaced once per call.
 */

/** An error answer of etcd: its message (`etcdserver: ...`) and gRPC status code. */
export class EtcdHttpError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = "EtcdHttpError";
  }
}

/** No answer: nothing listens, the connection broke, or the deadline passed. */
export class EtcdUnreachableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EtcdUnreachableError";
  }
}

/** gRPC status UNAUTHENTICATED: etcd's answer to a token it no longer knows. */
const CODE_UNAUTHENTICATED = 16;
/** Largest answer line accepted on a stream (a watch answer holds at most etcd's 1.5 MiB request). */
const STREAM_LINE_BYTES_MAX = 64 * 1024 * 1024;

export interface EtcdHttpOptions {
  endpoints: string[];
  username?: string;
  password?: string;
  /** Deno's HTTP client with the TLS settings (CA, client certificate), when any. */
  client?: Deno.HttpClient;
}

/** A streaming call under way (a watch). */
export interface EtcdStream {
  cancel(): void;
}

// deno-lint-ignore no-explicit-any
export type Json = any;

export class EtcdHttp {
  readonly #endpoints: string[];
  readonly #options: EtcdHttpOptions;
  /** The endpoint that answered last: calls start there. */
  #preferred = 0;
  #token: Promise<string> | null = null;
  readonly #streams = new Set<AbortController>();
  #closed = false;

  constructor(options: EtcdHttpOptions) {
    this.#options = options;
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ""));
  }

  /** One unary call, e.g. `call("kv/range", {...}, deadline)`; resolves with etcd's answer. */
  async call(path: string, body: Json, deadline: number): Promise<Json> {
    for (let authAttempt = 0;; authAttempt++) {
      try {
        return await this.#callAnyEndpoint(path, body, deadline);
      } catch (error) {
        if (authAttempt === 0 && this.#isStaleToken(error)) {
          this.#token = null; // expired or revoked: a new one, once
          continue;
        }
        throw error;
      }
    }
  }

  /**
   * A streaming call (`watch`): `body` is sent as the only request message; each answer message
   * goes to `onMessage`; `onEnd` is called once, with the error that ended the stream, or null
   * when etcd ended it, but not after `cancel()`.
   */
  stream(
    path: string,
    body: Json,
    onMessage: (message: Json) => void,
    onEnd: (error: Error | null) => void,
  ): EtcdStream {
    const abort = new AbortController();
    this.#streams.add(abort);
    let cancelled = false;
    const index = this.#preferred;
    const run = async () => {
      const response = await this.#fetch(index, path, body, abort.signal);
      if (!response.ok) throw await errorOf(response);
      this.#preferred = index;
      if (!response.body) throw new EtcdUnreachableError("etcd answered a stream without a body");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let text = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = text.indexOf("\n")) >= 0) {
          const line = text.slice(0, newline).trim();
          text = text.slice(newline + 1);
          if (line.length === 0) continue;
          const message = JSON.parse(line);
          if (message.error) throw gatewayError(message.error);
          if (cancelled) return;
          onMessage(message.result ?? {});
        }
        if (text.length > STREAM_LINE_BYTES_MAX) {
          throw new EtcdUnreachableError(
            `etcd sent a stream message over ${STREAM_LINE_BYTES_MAX} bytes`,
          );
        }
      }
    };
    run().then(
      () => {
        if (!cancelled) onEnd(null);
      },
      (error) => {
        // The next stream (the caller reopens it) gets a new token, or another endpoint.
        if (this.#isStaleToken(error)) this.#token = null;
        if (error instanceof EtcdUnreachableError && this.#preferred === index) {
          this.#preferred = (index + 1) % this.#endpoints.length;
        }
        if (cancelled) return;
        if (error instanceof EtcdHttpError || error instanceof EtcdUnreachableError) {
          onEnd(error);
        } else {
          onEnd(
            new EtcdUnreachableError(`the stream broke: ${messageOf(error)}`, { cause: error }),
          );
        }
      },
    ).finally(() => this.#streams.delete(abort));
    return {
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        abort.abort();
      },
    };
  }

  /** Ends every stream; later calls fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const abort of this.#streams) abort.abort();
    this.#streams.clear();
    this.#options.client?.close();
  }

  /** Whether `error` says our token is no longer accepted (expired, or etcd restarted). */
  #isStaleToken(error: unknown): boolean {
    return error instanceof EtcdHttpError && this.#options.username !== undefined &&
      (error.code === CODE_UNAUTHENTICATED || /invalid auth token/.test(error.message));
  }

  async #callAnyEndpoint(
    path: string,
    body: Json,
    deadline: number,
  ): Promise<Json> {
    let lastError: unknown = null;
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const index = (this.#preferred + tried) % this.#endpoints.length;
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const signal = AbortSignal.timeout(remaining);
      try {
        const response = await this.#fetch(index, path, body, signal);
        const text = await response.text();
        if (!response.ok) throw errorOfText(response.status, text);
        this.#preferred = index;
        const answer = text.length === 0 ? {} : JSON.parse(text);
        // A streaming call (a keep-alive) reports errors inside a 200 answer.
        if (answer && typeof answer.error === "object" && answer.result === undefined) {
          throw gatewayError(answer.error);
        }
        return answer;
      } catch (error) {
        if (error instanceof EtcdHttpError || error instanceof SyntaxError) throw error;
        lastError = error;
        if (signal.aborted) break; // the deadline passed: no time for another endpoint
      }
    }
    if (lastError === null || isTimeout(lastError)) {
      throw new EtcdUnreachableError(
        `no answer within the deadline (${path})`,
        lastError === null ? undefined : { cause: lastError },
      );
    }
    throw lastError instanceof EtcdUnreachableError
      ? lastError
      : new EtcdUnreachableError(messageOf(lastError), { cause: lastError });
  }

  async #fetch(index: number, path: string, body: Json, signal: AbortSignal): Promise<Response> {
    if (this.#closed) throw new EtcdUnreachableError("the etcd client is closed");
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.#options.username !== undefined) {
      headers.authorization = await this.#authToken(index, signal);
    }
    try {
      return await fetch(`${this.#endpoints[index]}/v3/${path}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal,
        client: this.#options.client,
      });
    } catch (error) {
      if (isTimeout(error) || signal.aborted) throw error;
      throw new EtcdUnreachableError(
        `cannot reach ${this.#endpoints[index]}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  #authToken(index: number, signal: AbortSignal): Promise<string> {
    this.#token ??= (async () => {
      const response = await fetch(`${this.#endpoints[index]}/v3/auth/authenticate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          name: this.#options.username,
          password: this.#options.password ?? "",
        }),
        signal,
        client: this.#options.client,
      }).catch((error) => {
        throw new EtcdUnreachableError(
          `cannot reach ${this.#endpoints[index]}: ${messageOf(error)}`,
          { cause: error },
        );
      });
      const text = await response.text();
      if (!response.ok) throw errorOfText(response.status, text);
      const token = JSON.parse(text).token;
      if (typeof token !== "string" || token.length === 0) {
        throw new EtcdHttpError("etcd did not return an auth token", CODE_UNAUTHENTICATED);
      }
      return token;
    })();
    const pending = this.#token;
    // A failed exchange is not kept: the next call tries again.
    pending.catch(() => {
      if (this.#token === pending) this.#token = null;
    });
    return pending;
  }
}

async function errorOf(response: Response): Promise<Error> {
  return errorOfText(response.status, await response.text().catch(() => ""));
}

function errorOfText(status: number, text: string): Error {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") return gatewayError(parsed.error ?? parsed);
  } catch {
    // Not JSON: a proxy or something else answered.
  }
  if (status === 502 || status === 503 || status === 504) {
    return new EtcdUnreachableError(`HTTP ${status}: ${text.slice(0, 200)}`);
  }
  return new EtcdHttpError(`HTTP ${status}: ${text.slice(0, 200)}`, 2);
}

function gatewayError(error: Json): EtcdHttpError | EtcdUnreachableError {
  if (typeof error === "string") return new EtcdHttpError(error, 2);
  const message = String(error.message ?? error.error ?? "unknown error");
  // Unary answers carry `code`; errors inside a stream carry `grpc_code`.
  const code = Number(error.code ?? error.grpc_code ?? 2);
  // UNAVAILABLE: etcd has no leader or is stopping; like no answer at all.
  if (code === 14) return new EtcdUnreachableError(message);
  return new EtcdHttpError(message, code);
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException &&
    (error.name === "TimeoutError" || error.name === "AbortError");
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
