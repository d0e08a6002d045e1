/**
 * A Kafka-aware TCP proxy on loopback for the idempotent-producer tests: it forwards whole
 * frames between real clients and a broker, and can lose Produce responses on purpose, the way
 * a network failure after the broker stored a batch does, so the client retries a batch the
 * broker already has.
 *
 * - `dropProduceResponse(skip)`: after `skip` more successful Produce responses, the next one is
 *   swallowed and that connection closed; the client resends on a new connection.
 * - `holdProduceResponses(records)` then `dropHeldAndDisconnect()`: once successful Produce
 *   responses for `records` more records went through, Produce responses stop being forwarded
 *   (a broker about to crash); then every held one is lost and every connection cut.
 * - `upstream` can change (a broker restarted on another port); clients keep the proxy's
 *   address, which the broker advertises (`--advertised-listener`).
 *
 * It decodes Produce requests and responses (the protocol codecs only) to record which batch
 * (producer id, epoch, sequence) got which base offset. Bounded: frames up to MAX_FRAME_BYTES,
 * at most RECORDED_PRODUCES_MAX produce exchanges recorded, and every loop ends when its socket
 * closes. Must not import the broker's code.
 */
import { Reader } from "../../lib/protocol/primitives.ts";
import { readRequestHeader, responseHeaderVersion } from "../../lib/protocol/headers.ts";
import { PRODUCE_REQUEST } from "../../lib/protocol/generated/produce_request.ts";
import { PRODUCE_RESPONSE } from "../../lib/protocol/generated/produce_response.ts";
import { RESPONSE_HEADER } from "../../lib/protocol/generated/response_header.ts";
import { readBatchInfo, scanBatches } from "../../lib/protocol/record_batch.ts";

/** Largest frame forwarded (the broker's default max frame). */
const MAX_FRAME_BYTES = 100 * 1024 * 1024;
/** Produce exchanges whose batches and offsets are kept for assertions. */
const RECORDED_PRODUCES_MAX = 200_000;
const PRODUCE_API_KEY = 0;

/** One batch of a Produce request, and the answer its partition got. */
export interface ProducedBatch {
  topic: string;
  partition: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  records: number;
  /** From the response; null when the response was lost. */
  errorCode: number | null;
  baseOffset: number | null;
  /** True for the response this proxy swallowed. */
  dropped: boolean;
}

interface PendingRequest {
  apiKey: number;
  apiVersion: number;
  batches: ProducedBatch[];
}

interface Link {
  client: Deno.Conn;
  upstream: Deno.Conn;
  pending: Map<number, PendingRequest>;
  closed: boolean;
}

/** Reads size-prefixed frames from a connection, straight into each frame's buffer. */
class FrameReader {
  readonly #conn: Deno.Conn;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next whole frame, size prefix included, or null at end of stream. */
  async next(): Promise<Uint8Array | null> {
    const prefix = new Uint8Array(4);
    if (!(await this.#fill(prefix))) return null;
    const size = new DataView(prefix.buffer).getInt32(0);
    if (size < 0 || size > MAX_FRAME_BYTES) throw new Error(`Frame of ${size} bytes`);
    const frame = new Uint8Array(4 + size);
    frame.set(prefix);
    if (!(await this.#fill(frame.subarray(4)))) return null;
    return frame;
  }

  async #fill(into: Uint8Array): Promise<boolean> {
    let at = 0;
    // Bounded: each read adds at least one byte or ends the stream.
    while (at < into.length) {
      let read: number | null;
      try {
        read = await this.#conn.read(into.subarray(at));
      } catch {
        return false;
      }
      if (read === null) return false;
      at += read;
    }
    return true;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let at = 0;
    while (at < bytes.length) at += await conn.write(bytes.subarray(at));
    return true;
  } catch {
    return false;
  }
}

function hostPort(addr: string): { hostname: string; port: number } {
  const colon = addr.lastIndexOf(":");
  return { hostname: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) };
}

export class KafkaProxy {
  /** Where connections go; change it when the broker restarts elsewhere. */
  upstream: string;
  /** Produce batches seen, with their answers, in request order. */
  readonly produced: ProducedBatch[] = [];
  readonly #listener: Deno.Listener;
  readonly #links = new Set<Link>();
  readonly #serving = new Set<Promise<void>>();
  #accepting: Promise<void>;
  /** Successful Produce responses still to forward before one is dropped; -1: none. */
  #dropAfter = -1;
  /** Records still to acknowledge before holding starts; -1: not holding. */
  #holdAfter = -1;
  #held = 0;
  #droppedResponses = 0;

  constructor(upstream: string) {
    this.upstream = upstream;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** `127.0.0.1:PORT` clients connect to. */
  get address(): string {
    return `127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }
  /** Produce responses held back since `holdProduceResponses()`. */
  get held(): number {
    return this.#held;
  }
  /** Produce responses swallowed so far. */
  get droppedResponses(): number {
    return this.#droppedResponses;
  }

  /** Forwards `skip` more successful Produce responses, then swallows one and closes its connection. */
  dropProduceResponse(skip = 0): void {
    this.#dropAfter = skip;
  }

  /**
   * Forwards successful Produce responses for `records` more records, then stops forwarding
   * Produce responses; they are kept until `dropHeldAndDisconnect()`.
   */
  holdProduceResponses(records = 0): void {
    this.#holdAfter = records;
  }

  /** Loses every held response, closes every connection, and forwards normally again. */
  dropHeldAndDisconnect(): void {
    this.#droppedResponses += this.#held;
    this.#held = 0;
    this.#holdAfter = -1;
    for (const link of [...this.#links]) this.#close(link);
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const link of [...this.#links]) this.#close(link);
    await Promise.all([...this.#serving]);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // Listener closed.
      }
      const serving = this.#serve(client);
      this.#serving.add(serving);
      serving.finally(() => this.#serving.delete(serving));
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect(hostPort(this.upstream));
    } catch {
      client.close();
      return;
    }
    const link: Link = { client, upstream, pending: new Map(), closed: false };
    this.#links.add(link);
    await Promise.all([this.#pumpRequests(link), this.#pumpResponses(link)]);
    this.#close(link);
  }

  #close(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    for (const conn of [link.client, link.upstream]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  async #pumpRequests(link: Link): Promise<void> {
    const frames = new FrameReader(link.client);
    for (;;) {
      const frame = await frames.next().catch(() => null);
      if (frame === null || link.closed) break;
      this.#noteRequest(link, frame);
      if (!(await writeAll(link.upstream, frame))) break;
    }
    this.#close(link);
  }

  async #pumpResponses(link: Link): Promise<void> {
    const frames = new FrameReader(link.upstream);
    for (;;) {
      const frame = await frames.next().catch(() => null);
      if (frame === null || link.closed) break;
      const correlationId = new DataView(frame.buffer).getInt32(4);
      const request = link.pending.get(correlationId);
      link.pending.delete(correlationId);
      if (request?.apiKey === PRODUCE_API_KEY) {
        const ok = this.#noteProduceResponse(request, frame);
        if (this.#holdAfter === 0) {
          this.#held++;
          continue;
        }
        if (this.#holdAfter > 0 && ok) {
          const records = request.batches.reduce((n, b) => n + b.records, 0);
          this.#holdAfter = Math.max(0, this.#holdAfter - records);
        }
        if (this.#dropAfter >= 0 && ok && this.#dropAfter-- === 0) {
          this.#droppedResponses++;
          for (const b of request.batches) b.dropped = true;
          break; // Lost on the wire: the client sees its connection fail.
        }
      }
      if (!(await writeAll(link.client, frame))) break;
    }
    this.#close(link);
  }

  #noteRequest(link: Link, frame: Uint8Array): void {
    const r = new Reader(frame.subarray(4));
    const header = readRequestHeader(r);
    const request: PendingRequest = {
      apiKey: header.requestApiKey,
      apiVersion: header.requestApiVersion,
      batches: [],
    };
    if (header.requestApiKey === PRODUCE_API_KEY) {
      const body = PRODUCE_REQUEST.read(r, header.requestApiVersion);
      if (body.acks === 0) return; // No response will come.
      for (const topic of body.topicData) {
        for (const p of topic.partitionData) {
          if (p.records === null) continue;
          for (const batch of scanBatches(p.records).batches) {
            const info = readBatchInfo(p.records, batch.position);
            request.batches.push({
              topic: topic.name ?? "",
              partition: p.index,
              producerId: info.producerId,
              producerEpoch: info.producerEpoch,
              baseSequence: info.baseSequence,
              records: info.recordsCount,
              errorCode: null,
              baseOffset: null,
              dropped: false,
            });
          }
        }
      }
      if (this.produced.length + request.batches.length <= RECORDED_PRODUCES_MAX) {
        this.produced.push(...request.batches);
      }
    }
    link.pending.set(header.correlationId, request);
  }

  /** Fills in the answers; true when every partition succeeded. */
  #noteProduceResponse(request: PendingRequest, frame: Uint8Array): boolean {
    const r = new Reader(frame.subarray(4));
    RESPONSE_HEADER.read(r, responseHeaderVersion(PRODUCE_API_KEY, request.apiVersion));
    const body = PRODUCE_RESPONSE.read(r, request.apiVersion);
    let ok = true;
    for (const topic of body.responses) {
      for (const p of topic.partitionResponses) {
        if (p.errorCode !== 0) ok = false;
        // One batch per partition from these clients; the first batch carries the base offset.
        const batch = request.batches.find((b) =>
          b.topic === topic.name && b.partition === p.index && b.errorCode === null
        );
        if (batch) {
          batch.errorCode = p.errorCode;
          batch.baseOffset = p.baseOffset;
        }
      }
    }
    return ok;
  }
}
