/**
 * The one file that imports `@grpc/grpc-js` (STYLE.md: each outside library behind one
 * adapter). It serves the control RPCs (control_proto.ts) and gives the CLI a client for them.
 * Messages cross this boundary as bytes: encoding is ours (protobuf_codec.ts), so the gRPC
 * library never loads a `.proto` file and `deno compile` embeds everything.
 *
 * Server: every call is authenticated first (the `authorization` metadata, checked by the
 * caller's `authenticate`), then decoded (a malformed message is INVALID_ARGUMENT), then handed
 * to its handler with an AbortSignal that fires when the client goes away or the server stops.
 * A handler's `ControlError` becomes its status code; anything else is INTERNAL.
 */
import * as grpc from "@grpc/grpc-js";
import { isIP } from "node:net";
import { checkServerIdentity, createSecureContext } from "node:tls";
import { ProtobufDecodeError } from "./protobuf_codec.ts";
import { checkTlsIdentity } from "../security/tls_identity.ts";
import { type ControlMethod, decodeControl, encodeControl } from "./control_proto.ts";
import { ControlError, GRPC_STATUS } from "./control_error.ts";
import type { Logger } from "../util/logger.ts";

/** The TLS server name sent when the control server is addressed by IP. */
const IP_SERVER_NAME = "kafscale-control";

/** Largest message either side accepts (gRPC's own default). */
export const MESSAGE_BYTES_MAX = 4 * 1024 * 1024;
/** Bound on messages a server stream holds for a client that reads slower than we write. */
export const STREAM_BUFFERED_MAX = 10_000;

export interface CallContext {
  /** Aborted when the client cancels or disconnects, or the server stops. */
  signal: AbortSignal;
  peer: string;
}

export type MethodHandler =
  | { kind: "unary"; handle(request: object, ctx: CallContext): Promise<object> }
  | {
    kind: "clientStream";
    handle(requests: AsyncIterable<object>, ctx: CallContext): Promise<object>;
  }
  | {
    kind: "serverStream";
    /** Resolves when the stream should end (OK); `write` throws once the call is gone. */
    handle(request: object, ctx: CallContext, write: (message: object) => void): Promise<void>;
  };

export interface GrpcServerOptions {
  hostname: string;
  port: number;
  methods: { method: ControlMethod; handler: MethodHandler }[];
  /** Returns why the call is refused (UNAUTHENTICATED), or null to let it through. */
  authenticate(authorization: string | null): string | null;
  logger: Logger;
  /**
   * PEM certificate and key: serve over TLS. With `clientCa`, clients must present a
   * certificate signed by it (mTLS).
   */
  tls?: { cert: string; key: string; clientCa: string | null };
}

export interface GrpcServer {
  /** The bound port (the configured one, or the one picked for port 0). */
  port: number;
  /**
   * New connections get this certificate, key and client CA (SIGHUP); open ones keep theirs.
   * Whether client certificates are asked for is fixed at start. Without TLS, nothing to do.
   */
  reloadTls(tls: { cert: string; key: string; clientCa: string | null }): void;
  /** Ends open streams, waits up to `graceMs` for calls in flight, then closes every connection. */
  stop(graceMs: number): Promise<void>;
}

/**
 * The control port's certificate, key and client CA, replaceable while the server runs: grpc-js
 * rebuilds its TLS context from what a certificate provider last reported.
 */
class ReloadableCertificates implements grpc.experimental.CertificateProvider {
  #identity: grpc.experimental.IdentityCertificateUpdate;
  #ca: grpc.experimental.CaCertificateUpdate | null;
  readonly #identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  readonly #caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();

  constructor(tls: { cert: string; key: string; clientCa: string | null }) {
    this.#identity = { certificate: Buffer.from(tls.cert), privateKey: Buffer.from(tls.key) };
    this.#ca = tls.clientCa === null ? null : { caCertificate: Buffer.from(tls.clientCa) };
  }

  update(tls: { cert: string; key: string; clientCa: string | null }): void {
    this.#identity = { certificate: Buffer.from(tls.cert), privateKey: Buffer.from(tls.key) };
    if (tls.clientCa !== null) this.#ca = { caCertificate: Buffer.from(tls.clientCa) };
    for (const listener of this.#caListeners) listener(this.#ca);
    for (const listener of this.#identityListeners) listener(this.#identity);
  }

  // Listeners are told on `update()` only: grpc-js registers them before the server's watcher
  // is in place, so a value given at once would reach no server. `startGrpcServer` updates once
  // every listener of the bind exists.
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.#caListeners.add(listener);
  }
  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.#caListeners.delete(listener);
  }
  addIdentityCertificateListener(
    listener: grpc.experimental.IdentityCertificateUpdateListener,
  ): void {
    this.#identityListeners.add(listener);
  }
  removeIdentityCertificateListener(
    listener: grpc.experimental.IdentityCertificateUpdateListener,
  ): void {
    this.#identityListeners.delete(listener);
  }
}

const passThrough = {
  serialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  deserialize: (buffer: Buffer) => new Uint8Array(buffer),
};

interface StatusLike {
  code: number;
  details: string;
}

function toStatus(err: unknown, logger: Logger, path: string): StatusLike {
  if (err instanceof ControlError) return { code: err.code, details: err.message };
  if (err instanceof ProtobufDecodeError) {
    return { code: GRPC_STATUS.INVALID_ARGUMENT, details: err.message };
  }
  logger.error("Control call failed", { method: path, error: String(err) });
  return {
    code: GRPC_STATUS.INTERNAL,
    details: `Internal error: ${err instanceof Error ? err.message : String(err)}`,
  };
}

function bracketed(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const { logger } = opts;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MESSAGE_BYTES_MAX,
    "grpc.max_send_message_length": MESSAGE_BYTES_MAX,
  });
  const stopping = new AbortController();
  const definition: Record<string, grpc.MethodDefinition<Uint8Array, Uint8Array>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};

  /** The call's context, or a status to refuse it with. */
  const begin = (
    call: { metadata: grpc.Metadata; getPeer(): string; on(e: "cancelled", f: () => void): void },
  ): { ctx: CallContext; done(): void } | StatusLike => {
    const auth = call.metadata.get("authorization");
    const refused = opts.authenticate(auth.length > 0 ? String(auth[0]) : null);
    if (refused !== null) return { code: GRPC_STATUS.UNAUTHENTICATED, details: refused };
    if (stopping.signal.aborted) {
      return { code: GRPC_STATUS.UNAVAILABLE, details: "The control server is stopping" };
    }
    const controller = new AbortController();
    const onStop = () => controller.abort();
    stopping.signal.addEventListener("abort", onStop);
    call.on("cancelled", () => controller.abort());
    return {
      ctx: { signal: controller.signal, peer: call.getPeer() },
      done: () => stopping.signal.removeEventListener("abort", onStop),
    };
  };

  for (const { method, handler } of opts.methods) {
    definition[method.name] = {
      path: method.path,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: passThrough.serialize,
      requestDeserialize: passThrough.deserialize,
      responseSerialize: passThrough.serialize,
      responseDeserialize: passThrough.deserialize,
      originalName: method.name,
    };
    const decode = (bytes: Uint8Array) => decodeControl<object>(method.request, bytes);
    const encode = (message: object) => encodeControl(method.response, message);
    switch (handler.kind) {
      case "unary":
        implementation[method.name] = (
          call: grpc.ServerUnaryCall<Uint8Array, Uint8Array>,
          callback: grpc.sendUnaryData<Uint8Array>,
        ) => {
          const started = begin(call);
          if (!("ctx" in started)) return callback(started as grpc.ServiceError);
          Promise.resolve()
            .then(() => handler.handle(decode(call.request), started.ctx))
            .then((response) => callback(null, encode(response)))
            .catch((err) => callback(toStatus(err, logger, method.path) as grpc.ServiceError))
            .finally(started.done);
        };
        break;
      case "clientStream":
        implementation[method.name] = (
          call: grpc.ServerReadableStream<Uint8Array, Uint8Array>,
          callback: grpc.sendUnaryData<Uint8Array>,
        ) => {
          const started = begin(call);
          if (!("ctx" in started)) return callback(started as grpc.ServiceError);
          async function* requests(): AsyncIterable<object> {
            for await (const bytes of call as AsyncIterable<Uint8Array>) yield decode(bytes);
          }
          Promise.resolve()
            .then(() => handler.handle(requests(), started.ctx))
            .then((response) => callback(null, encode(response)))
            .catch((err) => callback(toStatus(err, logger, method.path) as grpc.ServiceError))
            .finally(started.done);
        };
        break;
      case "serverStream":
        implementation[method.name] = (
          call: grpc.ServerWritableStream<Uint8Array, Uint8Array>,
        ) => {
          const started = begin(call);
          if (!("ctx" in started)) {
            call.emit("error", started);
            return;
          }
          const { ctx } = started;
          const write = (message: object) => {
            if (ctx.signal.aborted) throw new ControlError(GRPC_STATUS.CANCELLED, "Call ended");
            // grpc-js queues whole messages (object mode): the length counts messages.
            if (call.writableLength >= STREAM_BUFFERED_MAX) {
              throw new ControlError(
                GRPC_STATUS.RESOURCE_EXHAUSTED,
                `The client reads too slowly: ${STREAM_BUFFERED_MAX} messages are waiting`,
              );
            }
            call.write(encode(message));
          };
          Promise.resolve()
            .then(() => handler.handle(decode(call.request), ctx, write))
            .then(() => call.end())
            .catch((err) => {
              if (ctx.signal.aborted && !stopping.signal.aborted) return; // the client left
              if (stopping.signal.aborted) return call.end();
              call.emit("error", toStatus(err, logger, method.path));
            })
            .finally(started.done);
        };
        break;
    }
  }
  server.addService(definition as grpc.ServiceDefinition, implementation);
  const certificates = opts.tls ? new ReloadableCertificates(opts.tls) : null;
  const mtls = opts.tls?.clientCa != null;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${bracketed(opts.hostname)}:${opts.port}`,
      certificates
        // The same provider gives the identity and (with mTLS) the client CA; grpc-js's
        // factory hands its first argument over as the identity provider.
        ? grpc.experimental.createCertificateProviderServerCredentials(
          certificates,
          mtls ? certificates : null,
          mtls,
        )
        : grpc.ServerCredentials.createInsecure(),
      (err, bound) => (err ? reject(err) : resolve(bound)),
    );
  });
  // Until this first update the listener drops connections (no certificate yet).
  if (opts.tls) certificates?.update(opts.tls);
  return {
    port,
    reloadTls(tls) {
      if (!certificates) return;
      // A pair grpc-js cannot use would leave the port dropping every new connection: refuse it
      // here (the caller reports it) and keep serving the old one.
      createSecureContext({ cert: tls.cert, key: tls.key, ca: tls.clientCa ?? undefined });
      checkTlsIdentity(tls.cert, tls.key);
      certificates.update(tls);
    },
    async stop(graceMs: number) {
      stopping.abort();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

// ---- client ---------------------------------------------------------------------------------

export interface GrpcClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call. */
  token: string | null;
  /** TLS: the CA to trust (PEM; null: the system's), and a client certificate for mTLS. */
  tls?: { ca: string | null; cert: string | null; key: string | null };
}

/** A control client over one channel; errors are `ControlError`s with the server's status. */
export class GrpcClient {
  readonly #client: grpc.Client;
  readonly #address: string;
  readonly #token: string | null;

  constructor(address: string, opts: GrpcClientOptions) {
    this.#address = address;
    this.#token = opts.token;
    const tls = opts.tls;
    // node:tls takes no IP address as the TLS server name (SNI): for an IP, a placeholder name
    // is sent and the certificate is checked against the IP itself.
    const host = address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    const byIp = isIP(host) !== 0;
    const credentials = tls
      ? grpc.credentials.createSsl(
        tls.ca === null ? null : Buffer.from(tls.ca),
        tls.key === null ? null : Buffer.from(tls.key),
        tls.cert === null ? null : Buffer.from(tls.cert),
        byIp
          ? { checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) }
          : undefined,
      )
      : grpc.credentials.createInsecure();
    this.#client = new grpc.Client(address, credentials, {
      "grpc.max_receive_message_length": MESSAGE_BYTES_MAX,
      ...(tls && byIp ? { "grpc.ssl_target_name_override": IP_SERVER_NAME } : {}),
    });
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.#token !== null) md.set("authorization", `Bearer ${this.#token}`);
    return md;
  }

  #error(err: grpc.ServiceError | Error): ControlError {
    const code = (err as grpc.ServiceError).code ?? GRPC_STATUS.UNKNOWN;
    const details = (err as grpc.ServiceError).details ?? err.message;
    if (code === GRPC_STATUS.UNAVAILABLE || code === GRPC_STATUS.DEADLINE_EXCEEDED) {
      return new ControlError(
        code,
        `Cannot reach the control server "${this.#address}": ${details}`,
      );
    }
    return new ControlError(code, details);
  }

  unary<T>(method: ControlMethod, request: object, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        method.path,
        passThrough.serialize,
        passThrough.deserialize,
        encodeControl(method.request, request),
        this.#metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, response) => {
          if (err) return reject(this.#error(err));
          try {
            resolve(decodeControl<T>(method.response, response!));
          } catch (decodeErr) {
            reject(decodeErr);
          }
        },
      );
    });
  }

  clientStream<T>(method: ControlMethod, requests: object[], timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const call = this.#client.makeClientStreamRequest(
        method.path,
        passThrough.serialize,
        passThrough.deserialize,
        this.#metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, response) => {
          if (err) return reject(this.#error(err));
          try {
            resolve(decodeControl<T>(method.response, response!));
          } catch (decodeErr) {
            reject(decodeErr);
          }
        },
      );
      for (const request of requests) call.write(encodeControl(method.request, request));
      call.end();
    });
  }

  /** Calls `onMessage` per streamed message; resolves when the stream ends or `signal` fires. */
  serverStream<T>(
    method: ControlMethod,
    request: object,
    onMessage: (message: T) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = this.#client.makeServerStreamRequest(
        method.path,
        passThrough.serialize,
        passThrough.deserialize,
        encodeControl(method.request, request),
        this.#metadata(),
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      call.on("data", (bytes: Uint8Array) => {
        try {
          onMessage(decodeControl<T>(method.response, bytes));
        } catch (err) {
          call.cancel();
          reject(err);
        }
      });
      call.on("error", (err: grpc.ServiceError) => {
        signal?.removeEventListener("abort", onAbort);
        if (err.code === GRPC_STATUS.CANCELLED && signal?.aborted) resolve();
        else reject(this.#error(err));
      });
      call.on("end", () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
