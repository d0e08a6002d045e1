/**
 * TLS for the Kafka listeners (SSL, SASL_SSL) through node:tls, which lets the certificate be
 * replaced on a live listener (`reload`, on SIGHUP) and asks for client certificates (mTLS).
 *
 * Deno's node:tls does not verify client certificates itself, so mTLS is checked here: the
 * certificate a client presents must be signed by one of the CA certificates and be valid now;
 * otherwise the connection is closed before any Kafka byte is read. The principal is
 * `User:<subject DN>` (e.g. `User:CN=alice,O=acme`), as Kafka's default principal builder names
 * it.
 *
 * Accepted sockets are adapted to the part of `Deno.Conn` that `Connection` uses (read, write,
 * close, remoteAddr) with bounded buffering: reading from the socket pauses while more than
 * READ_BUFFER_BYTES wait to be consumed. Must not import lib/broker.
 */
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { checkTlsIdentity } from "../security/tls_identity.ts";
import type { Logger } from "../util/logger.ts";

/** Bytes received and not yet read by the connection before the socket is paused. */
const READ_BUFFER_BYTES = 1024 * 1024;
/** Pending accepted connections before new ones are refused. */
const ACCEPT_QUEUE_MAX = 1024;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA certificates that sign client certificates; set: clients must present one (mTLS). */
  clientCaFile: string | null;
}

interface TlsMaterial {
  cert: string;
  key: string;
  ca: X509Certificate[];
  caPem: string | null;
}

/** Reads and checks the files; errors name the setting that is wrong. */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (path: string, setting: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (err) {
      throw new Error(`Cannot read "${setting}" ("${path}"): ${(err as Error).message}`);
    }
  };
  const cert = await read(files.certFile, "tls-cert-file");
  const key = await read(files.keyFile, "tls-key-file");
  try {
    tls.createSecureContext({ cert, key });
    checkTlsIdentity(cert, key);
  } catch (err) {
    throw new Error(
      `"tls-cert-file" and "tls-key-file" do not make a usable TLS identity ` +
        `("${files.certFile}", "${files.keyFile}"): ${(err as Error).message}`,
    );
  }
  let ca: X509Certificate[] = [];
  let caPem: string | null = null;
  if (files.clientCaFile !== null) {
    caPem = await read(files.clientCaFile, "tls-client-ca-file");
    const blocks = caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ??
      [];
    try {
      ca = blocks.map((b) => new X509Certificate(b));
    } catch (err) {
      throw new Error(
        `"tls-client-ca-file" ("${files.clientCaFile}") holds a certificate that cannot be ` +
          `read: ${(err as Error).message}`,
      );
    }
    if (ca.length === 0) {
      throw new Error(`"tls-client-ca-file" ("${files.clientCaFile}") holds no PEM certificate`);
    }
  }
  return { cert, key, ca, caPem };
}

/** The principal of a verified client certificate, or why it is refused. */
export function clientPrincipal(
  raw: Uint8Array | undefined,
  ca: readonly X509Certificate[],
  nowMs: number,
): { principal: string } | { refused: string } {
  if (!raw || raw.length === 0) return { refused: "no client certificate" };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(raw);
  } catch {
    return { refused: "unreadable client certificate" };
  }
  if (nowMs < Date.parse(cert.validFrom) || nowMs > Date.parse(cert.validTo)) {
    return { refused: "client certificate expired or not yet valid" };
  }
  const issuer = ca.find((c) => cert.checkIssued(c) && cert.verify(c.publicKey));
  if (!issuer) return { refused: "client certificate not signed by a trusted CA" };
  return { principal: certificatePrincipal(cert) };
}

/** `User:<subject DN>` of a certificate, as SSL listeners name the client presenting it. */
export function certificatePrincipal(cert: X509Certificate): string {
  // "CN=alice\nO=acme" -> "CN=alice,O=acme" (most specific first, as Kafka prints it).
  const dn = cert.subject.split("\n").filter((x) => x !== "").reverse().join(",");
  return `User:${dn}`;
}

/** The subset of Deno.Conn that Connection uses. */
export interface StreamConn {
  readonly remoteAddr: Deno.Addr;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  setNoDelay?(noDelay?: boolean): void;
}

/** An accepted TLS socket as a StreamConn, with the principal of its client certificate. */
class TlsSocketConn implements StreamConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly principal: string | null;
  readonly #socket: tls.TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | null = null;
  #waiter: (() => void) | null = null;

  constructor(socket: tls.TLSSocket, principal: string | null) {
    this.#socket = socket;
    this.principal = principal;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "unknown",
      port: socket.remotePort ?? 0,
    };
    socket.on("data", (data: Uint8Array) => {
      // Copied: the socket may reuse the buffer behind `data` for its next read.
      this.#chunks.push(new Uint8Array(data));
      this.#buffered += data.byteLength;
      if (this.#buffered > READ_BUFFER_BYTES) socket.pause();
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    // Bounded: each wait ends with data, end, error or close.
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const head = this.#chunks[0];
      const take = Math.min(head.length, p.length - n);
      p.set(head.subarray(0, take), n);
      n += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered <= READ_BUFFER_BYTES && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    // Copied: the caller may reuse its buffer once the promise resolves.
    return new Promise((resolve, reject) => {
      this.#socket.write(p.slice(), (err?: Error | null) => err ? reject(err) : resolve(p.length));
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#wake();
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }
}

/** A TLS listener with Deno.Listener's accept/close/addr shape. */
export class TlsListener {
  readonly #server: tls.Server;
  readonly #logger: Logger;
  #material: TlsMaterial;
  #queue: TlsSocketConn[] = [];
  #waiter: ((conn: TlsSocketConn | null) => void) | null = null;
  #closed = false;
  #addr: Deno.NetAddr | null = null;

  private constructor(material: TlsMaterial, logger: Logger) {
    this.#material = material;
    this.#logger = logger;
    this.#server = tls.createServer({
      cert: material.cert,
      key: material.key,
      requestCert: material.ca.length > 0,
      rejectUnauthorized: false, // checked by clientPrincipal (see the module comment)
      ...(material.caPem ? { ca: material.caPem } : {}),
    }, (socket) => this.#accepted(socket));
    this.#server.on("tlsClientError", (err: Error) => {
      this.#logger.debug("TLS handshake failed", { err: err.message });
    });
  }

  static async listen(
    hostname: string,
    port: number,
    files: TlsFiles,
    logger: Logger,
  ): Promise<TlsListener> {
    const listener = new TlsListener(await loadTlsMaterial(files), logger);
    await new Promise<void>((resolve, reject) => {
      listener.#server.once("error", reject);
      listener.#server.listen(port, hostname, () => {
        listener.#server.off("error", reject);
        resolve();
      });
    });
    const a = listener.#server.address() as { address: string; port: number };
    listener.#addr = { transport: "tcp", hostname: a.address, port: a.port };
    return listener;
  }

  get addr(): Deno.NetAddr {
    return this.#addr!;
  }

  /** Re-reads the certificate, key and client CAs; new connections use them (SIGHUP). */
  async reload(files: TlsFiles): Promise<void> {
    const material = await loadTlsMaterial(files);
    this.#server.setSecureContext({
      cert: material.cert,
      key: material.key,
      ...(material.caPem ? { ca: material.caPem } : {}),
    });
    this.#material = material;
  }

  #accepted(socket: tls.TLSSocket): void {
    let principal: string | null = null;
    if (this.#material.ca.length > 0) {
      const peer = socket.getPeerCertificate();
      const verdict = clientPrincipal(
        peer?.raw ? new Uint8Array(peer.raw) : undefined,
        this.#material.ca,
        Date.now(),
      );
      if ("refused" in verdict) {
        this.#logger.warn("Refused a TLS client", {
          client: `${socket.remoteAddress}:${socket.remotePort}`,
          reason: verdict.refused,
        });
        socket.destroy();
        return;
      }
      principal = verdict.principal;
    }
    if (this.#closed || this.#queue.length >= ACCEPT_QUEUE_MAX) {
      socket.destroy();
      return;
    }
    const conn = new TlsSocketConn(socket, principal);
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w(conn);
    } else {
      this.#queue.push(conn);
    }
  }

  /** The next accepted connection; throws Deno.errors.BadResource once closed. */
  async accept(): Promise<TlsSocketConn> {
    const next = this.#queue.shift();
    if (next) return next;
    if (this.#closed) throw new Deno.errors.BadResource("TLS listener closed");
    const conn = await new Promise<TlsSocketConn | null>((resolve) => this.#waiter = resolve);
    if (conn === null) throw new Deno.errors.BadResource("TLS listener closed");
    return conn;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const c of this.#queue) c.close();
    this.#queue = [];
    const w = this.#waiter;
    this.#waiter = null;
    w?.(null);
  }
}

export type { TlsSocketConn };
