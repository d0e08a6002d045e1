/**
 * One connection to a Kafka broker speaking the generated codecs: sends a
 * request at an explicit version and decodes the response. Requests are
 * pipelined; responses are matched by correlation id. Used by the CLI, the
 * tests and the benchmark — never by the broker itself.
 */
import { Reader, Writer } from "../protocol/primitives.ts";
import type { MessageCodec } from "../protocol/codec.ts";
import { requestHeaderVersion, responseHeaderVersion } from "../protocol/headers.ts";
import { REQUEST_HEADER } from "../protocol/generated/request_header.ts";
import { RESPONSE_HEADER } from "../protocol/generated/response_header.ts";
import { SASL_HANDSHAKE_REQUEST } from "../protocol/generated/sasl_handshake_request.ts";
import { SASL_HANDSHAKE_RESPONSE } from "../protocol/generated/sasl_handshake_response.ts";
import { SASL_AUTHENTICATE_REQUEST } from "../protocol/generated/sasl_authenticate_request.ts";
import { SASL_AUTHENTICATE_RESPONSE } from "../protocol/generated/sasl_authenticate_response.ts";
import { errorName } from "../protocol/error_codes.ts";
import { type ClientSecurity, PLAINTEXT } from "./client_security.ts";
import { plainMessage, ScramClient } from "./sasl_client.ts";

/** Largest response frame this client accepts. */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export class KafkaConnectionError extends Error {
  override name = "KafkaConnectionError";
}

interface Waiter {
  apiKey: number;
  apiVersion: number;
  resolve: (frame: Uint8Array) => void;
  reject: (err: Error) => void;
}

export interface SendOptions {
  /** Produce with acks=0: the broker sends no response. */
  expectResponse?: boolean;
}

const HANDSHAKE = { request: SASL_HANDSHAKE_REQUEST, response: SASL_HANDSHAKE_RESPONSE };
const AUTHENTICATE = { request: SASL_AUTHENTICATE_REQUEST, response: SASL_AUTHENTICATE_RESPONSE };

export class KafkaConnection {
  readonly #conn: Deno.Conn;
  readonly #clientId: string;
  #correlationId = 1;
  #waiters = new Map<number, Waiter>();
  #closed = false;
  #reader: Promise<void>;

  private constructor(conn: Deno.Conn, clientId: string) {
    this.#conn = conn;
    this.#clientId = clientId;
    this.#reader = this.#readLoop();
  }

  /**
   * Connects to `address` (HOST:PORT). With `security`, over TLS (SSL, SASL_SSL) and logged in
   * with SASL (SASL_PLAINTEXT, SASL_SSL) before the connection is handed out.
   */
  static async connect(
    address: string,
    clientId = "kafscale-cli",
    security: ClientSecurity = PLAINTEXT,
  ): Promise<KafkaConnection> {
    const idx = address.lastIndexOf(":");
    if (idx <= 0) {
      throw new KafkaConnectionError(`Bootstrap address must be HOST:PORT, got "${address}"`);
    }
    const hostname = address.slice(0, idx).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(idx + 1));
    const tls = security.protocol === "SSL" || security.protocol === "SASL_SSL";
    let conn: Deno.Conn;
    try {
      if (tls) {
        const tlsConn = await Deno.connectTls({
          hostname,
          port,
          caCerts: security.caCerts,
          ...(security.cert && security.key ? { cert: security.cert, key: security.key } : {}),
        });
        await tlsConn.handshake();
        conn = tlsConn;
      } else {
        const tcp = await Deno.connect({ hostname, port, transport: "tcp" });
        tcp.setNoDelay(true);
        conn = tcp;
      }
    } catch (err) {
      throw new KafkaConnectionError(
        `Cannot connect to "${address}"${tls ? " over TLS" : ""}: ${(err as Error).message}`,
      );
    }
    const connection = new KafkaConnection(conn, clientId);
    if (security.sasl) {
      try {
        await connection.#login(security.sasl);
      } catch (err) {
        connection.close();
        throw new KafkaConnectionError(
          `Cannot log in to "${address}" as "${security.sasl.username}" with ` +
            `${security.sasl.mechanism}: ${(err as Error).message}`,
        );
      }
    }
    return connection;
  }

  async #login(sasl: NonNullable<ClientSecurity["sasl"]>): Promise<void> {
    const hs = (await this.send(HANDSHAKE, 1, { mechanism: sasl.mechanism }))!;
    if (hs.errorCode !== 0) {
      throw new Error(
        `${errorName(hs.errorCode)}; the listener offers ${
          hs.mechanisms.join(", ") || "no SASL mechanism"
        }`,
      );
    }
    const step = async (authBytes: Uint8Array) => {
      const res = (await this.send(AUTHENTICATE, 2, { authBytes }))!;
      if (res.errorCode !== 0) {
        throw new Error(`${errorName(res.errorCode)}: ${res.errorMessage ?? "no message"}`);
      }
      return res.authBytes;
    };
    if (sasl.mechanism === "PLAIN") {
      await step(plainMessage(sasl.username, sasl.password));
      return;
    }
    const scram = new ScramClient(sasl.mechanism, sasl.username, sasl.password);
    const serverFirst = await step(scram.first());
    scram.verify(await step(scram.final(serverFirst)));
  }

  /** Sends raw frame bytes (already size-prefixed); for tests of malformed input. */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    let pos = 0;
    while (pos < bytes.length) pos += await this.#conn.write(bytes.subarray(pos));
  }

  /** Encodes and sends a request; resolves with the decoded response. */
  async send<Req, Res>(
    codecs: { request: MessageCodec<Req>; response: MessageCodec<Res> },
    apiVersion: number,
    body: Req,
    options: SendOptions = {},
  ): Promise<Res | null> {
    const frame = await this.sendFrame(codecs.request, apiVersion, body, options);
    if (frame === null) return null;
    const r = new Reader(frame);
    RESPONSE_HEADER.read(r, responseHeaderVersion(codecs.request.apiKey, apiVersion));
    return codecs.response.read(r, apiVersion);
  }

  /** Sends a request and resolves with the raw response frame (header included). */
  sendFrame<Req>(
    codec: MessageCodec<Req>,
    apiVersion: number,
    body: Req,
    options: SendOptions = {},
  ): Promise<Uint8Array | null> {
    if (this.#closed) return Promise.reject(new KafkaConnectionError("Connection is closed"));
    const correlationId = this.#correlationId++;
    const w = new Writer();
    const sizePos = w.reserveInt32();
    REQUEST_HEADER.write(w, {
      requestApiKey: codec.apiKey,
      requestApiVersion: apiVersion,
      correlationId,
      clientId: this.#clientId,
    }, requestHeaderVersion(codec.apiKey, apiVersion));
    codec.write(w, body, apiVersion);
    w.patchInt32(sizePos, w.length - 4);
    const bytes = w.finishBytes();
    if (options.expectResponse === false) {
      return this.sendRaw(bytes).then(() => null);
    }
    const response = new Promise<Uint8Array>((resolve, reject) => {
      this.#waiters.set(correlationId, { apiKey: codec.apiKey, apiVersion, resolve, reject });
    });
    this.sendRaw(bytes).catch((err) => this.#fail(err));
    return response;
  }

  async #readLoop(): Promise<void> {
    const header = new Uint8Array(4);
    try {
      for (;;) {
        if (!(await this.#readFully(header))) break;
        const size = new DataView(header.buffer).getInt32(0);
        if (size < 4 || size > MAX_RESPONSE_BYTES) {
          throw new KafkaConnectionError(`Invalid response size ${size}`);
        }
        const frame = new Uint8Array(size);
        if (!(await this.#readFully(frame))) break;
        const correlationId = new DataView(frame.buffer).getInt32(0);
        const waiter = this.#waiters.get(correlationId);
        if (!waiter) throw new KafkaConnectionError(`Unexpected correlation id ${correlationId}`);
        this.#waiters.delete(correlationId);
        waiter.resolve(frame);
      }
      this.#fail(new KafkaConnectionError("Connection closed by the broker"));
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async #readFully(buf: Uint8Array): Promise<boolean> {
    let pos = 0;
    while (pos < buf.length) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf.subarray(pos));
      } catch (err) {
        if (this.#closed) return false;
        throw err;
      }
      if (n === null) return false;
      pos += n;
    }
    return true;
  }

  #fail(err: Error): void {
    for (const w of this.#waiters.values()) w.reject(err);
    this.#waiters.clear();
    this.close();
  }

  /** Whether the broker closed the connection (or it failed). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the read side has ended (the broker closed the connection, or we did). */
  async closedByPeer(): Promise<void> {
    await this.#reader;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#reader;
  }
}
