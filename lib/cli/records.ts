/**
 * `kafscale produce TOPIC` and `kafscale consume TOPIC`: push and read records from the binary,
 * without kcat or Java, through the same client library as `topics` and `groups`
 * (lib/client/records_client.ts). Options follow kcat and rpk.
 *
 * produce: one record per input line (stdin, or --file), `KEY<delimiter>VALUE` with
 * --key-delimiter, or one JSON object per line with --format json
 * (`{"key":…,"value":…,"headers":{…},"partition":…}`, strings or null). Exit 0 only when every
 * record was acknowledged.
 *
 * consume: from --from-beginning, --offset N or --from-time ISO (default: the end, new records
 * only), --count N records or --end (stop at the high watermark), else follows until
 * interrupted; prints each record with a kcat-style --format template or as JSON lines.
 */
import { type AdminClient, AdminError } from "../client/admin.ts";
import { GroupMember } from "../client/group_member.ts";
import {
  COMPRESSION_CHOICES,
  type CompressionName,
  type FetchedRecord,
  RecordFetcher,
  RecordProducer,
} from "../client/records_client.ts";
import type { ProducerRecord, RecordHeader } from "../protocol/records.ts";
import { joinBytes } from "../util/bytes.ts";
import {
  type CliIo,
  CONSOLE_IO,
  EXIT,
  parseCommand,
  parseInteger,
  runCommand,
  UsageError,
  withAdmin,
} from "./output.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Records read from the input before they are sent (bounds memory on big inputs). */
const PRODUCE_CHUNK_RECORDS = 10_000;
/** Longest a follow fetch waits at the broker. */
const FETCH_WAIT_MS = 500;
/** How often `consume --group` commits what it printed (and once more at the end). */
const AUTO_COMMIT_MS = 5_000;

/** Where reading starts on `partitions`: earliest, latest, or the first offset at a time. */
async function startPositions(
  admin: AdminClient,
  topic: string,
  partitions: number[],
  spec: "earliest" | "latest" | { timestamp: number },
  byTime: boolean,
): Promise<Map<number, number>> {
  const positions = new Map<number, number>();
  if (partitions.length === 0) return positions;
  const refs = partitions.map((partition) => ({ topic, partition }));
  const listed = await admin.listOffsets(refs, spec);
  const ends = byTime ? await admin.listOffsets(refs, "latest") : listed;
  for (const p of partitions) {
    let at = listed.get(`${topic}/${p}`) ?? -1;
    if (at < 0) at = ends.get(`${topic}/${p}`) ?? 0; // no record at or after the time
    positions.set(p, at);
  }
  return positions;
}

const COMMON = [
  "  --bootstrap-server HOST:PORT   Broker to connect to (default: localhost:9092)",
  "  --command-config FILE          Client properties for a secured listener (security.protocol,",
  "                                 sasl.mechanism, sasl.jaas.config, ssl.truststore.location)",
  "  -h, --help                     Show this help",
];

export function produceHelp(): string {
  return [
    "Usage: kafscale produce TOPIC [options] < records",
    "",
    "Produces one record per input line (stdin, or --file) and exits 0 once every record was",
    "acknowledged; a failure prints one line on stderr with how many records were acknowledged.",
    "",
    "Options:",
    "  --file PATH                    Read records from PATH instead of stdin",
    "  --key-delimiter D              Split each line at the first D: KEY D VALUE (else no key)",
    "  --header K=V                   A header on every record, repeatable",
    "  --partition N                  Send every record to partition N (default: by key hash,",
    "                                 as the Java client, or in turn for keyless records)",
    "  --compression CODEC            none, gzip, snappy, lz4 or zstd (default: none)",
    "  --acks 0|1|all                 Acknowledgement to wait for (default: all)",
    "  --format text|json             text: lines as above; json: one object per line,",
    '                                 {"key":..,"value":..,"headers":{"k":"v"},"partition":N}',
    ...COMMON,
  ].join("\n");
}

export function consumeHelp(): string {
  return [
    "Usage: kafscale consume TOPIC [options]",
    "",
    "Prints records of TOPIC from a chosen start; follows the topic until interrupted unless",
    "--count or --end is given.",
    "",
    "Options:",
    "  --from-beginning               Start at each partition's first record",
    "  --offset N                     Start at offset N (with --partition, or on every partition)",
    "  --from-time ISO                Start at the first record at or after this time",
    "                                 (default start: the end, only new records)",
    "  --partition N                  Only partition N (default: all)",
    "  --count N                      Exit after N records",
    "  --end                          Exit once the end of every partition is reached",
    "  --group G                      Consume as a member of consumer group G: partitions are",
    "                                 shared with the group's other members, reading starts at",
    "                                 the group's committed offsets (the start options apply",
    "                                 where it has none), and what was printed is committed",
    "                                 (every 5 s and at the end)",
    "  --format FORMAT                json (one object per line), or a template (default: %s\\n):",
    "                                 %t topic, %p partition, %o offset, %k key, %s value,",
    "                                 %T timestamp (ms), %h headers (k=v,...), %K/%S key/value",
    "                                 length (-1: null), \\n \\t \\\\ escapes, %% a percent sign",
    ...COMMON,
  ].join("\n");
}

function parseAcks(value: string | undefined): -1 | 0 | 1 {
  switch (value ?? "all") {
    case "all":
    case "-1":
      return -1;
    case "0":
      return 0;
    case "1":
      return 1;
  }
  throw new UsageError(`Option "--acks" takes 0, 1 or all, got "${value}"`);
}

function parseHeaders(values: string[]): RecordHeader[] {
  return values.map((kv) => {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`Option "--header" takes K=V, got "${kv}"`);
    return { key: kv.slice(0, eq), value: encoder.encode(kv.slice(eq + 1)) };
  });
}

/** One input line as a record (text: optional key delimiter; json: an object). */
function lineToRecord(
  line: string,
  lineNo: number,
  opts: { format: "text" | "json"; delimiter: string | null; headers: RecordHeader[] },
): ProducerRecord & { partition?: number } {
  if (opts.format === "text") {
    if (opts.delimiter === null) {
      return { key: null, value: encoder.encode(line), headers: opts.headers };
    }
    const at = line.indexOf(opts.delimiter);
    if (at < 0) {
      throw new UsageError(`Line ${lineNo} has no key delimiter "${opts.delimiter}"`);
    }
    return {
      key: encoder.encode(line.slice(0, at)),
      value: encoder.encode(line.slice(at + opts.delimiter.length)),
      headers: opts.headers,
    };
  }
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    throw new UsageError(`Line ${lineNo} is not JSON`);
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    throw new UsageError(`Line ${lineNo} is not a JSON object`);
  }
  const o = obj as Record<string, unknown>;
  const bytes = (v: unknown, what: string): Uint8Array | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== "string") throw new UsageError(`Line ${lineNo}: "${what}" must be a string`);
    return encoder.encode(v);
  };
  const headers = [...opts.headers];
  if (o.headers !== undefined && o.headers !== null) {
    if (typeof o.headers !== "object" || Array.isArray(o.headers)) {
      throw new UsageError(`Line ${lineNo}: "headers" must be an object of strings`);
    }
    for (const [k, v] of Object.entries(o.headers as Record<string, unknown>)) {
      headers.push({ key: k, value: bytes(v, `headers.${k}`) });
    }
  }
  let partition: number | undefined;
  if (o.partition !== undefined) {
    if (!Number.isSafeInteger(o.partition) || (o.partition as number) < 0) {
      throw new UsageError(`Line ${lineNo}: "partition" must be a non-negative integer`);
    }
    partition = o.partition as number;
  }
  return { key: bytes(o.key, "key"), value: bytes(o.value, "value"), headers, partition };
}

/** Lines of a readable stream, without their line ends ("\r\n" or "\n"). */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  const textDecoder = new TextDecoder();
  for await (const chunk of stream) {
    rest += textDecoder.decode(chunk, { stream: true });
    let at;
    while ((at = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, at).replace(/\r$/, "");
      rest = rest.slice(at + 1);
    }
  }
  rest += textDecoder.decode();
  if (rest !== "") yield rest.replace(/\r$/, "");
}

export async function runProduce(
  args: string[],
  io: CliIo = CONSOLE_IO,
  input: ReadableStream<Uint8Array> = Deno.stdin.readable,
): Promise<number> {
  return await runCommand(io, "kafscale produce", async () => {
    const cmd = parseCommand(args, {
      file: { type: "string" },
      "key-delimiter": { type: "string", short: "K" },
      header: { type: "string", multiple: true, short: "H" },
      partition: { type: "string", short: "p" },
      compression: { type: "string", short: "z" },
      acks: { type: "string" },
      format: { type: "string" },
    });
    if (cmd.help) return (io.stdout(produceHelp()), EXIT.OK);
    if (cmd.positionals.length !== 1) throw new UsageError("Expected one topic name");
    const topic = cmd.positionals[0];
    const v = cmd.values;
    const format = (v.format as string | undefined) ?? "text";
    if (format !== "text" && format !== "json") {
      throw new UsageError(`Option "--format" takes text or json, got "${format}"`);
    }
    const compression = (v.compression as string | undefined) ?? "none";
    if (!(COMPRESSION_CHOICES as readonly string[]).includes(compression)) {
      throw new UsageError(
        `Option "--compression" takes ${COMPRESSION_CHOICES.join(", ")}, got "${compression}"`,
      );
    }
    const delimiter = (v["key-delimiter"] as string | undefined) ?? null;
    if (delimiter === "") throw new UsageError('Option "--key-delimiter" must not be empty');
    const partition = v.partition === undefined
      ? undefined
      : parseInteger(v.partition as string, 'Option "--partition"', 0);
    const acks = parseAcks(v.acks as string | undefined);
    const headers = parseHeaders((v.header as string[] | undefined) ?? []);
    let source = input;
    if (typeof v.file === "string") {
      try {
        source = (await Deno.open(v.file)).readable;
      } catch (error) {
        throw new AdminError(`Cannot read "${v.file}": ${(error as Error).message}`);
      }
    }
    return await withAdmin(cmd, async (admin) => {
      const producer = new RecordProducer(admin, topic, {
        acks,
        compression: compression as CompressionName,
      });
      await producer.partitions(); // the topic must exist: fail before reading the input
      let acked = 0;
      let lineNo = 0;
      let chunk: (ProducerRecord & { partition?: number })[] = [];
      const send = async () => {
        try {
          await producer.send(chunk);
        } catch (error) {
          if (error instanceof AdminError) {
            throw new AdminError(`${error.message} (${acked} records acknowledged before)`);
          }
          throw error;
        }
        acked += chunk.length;
        chunk = [];
        progress(io, `${acked} records acknowledged`);
      };
      for await (const line of lines(source)) {
        lineNo++;
        if (line === "" && format === "json") continue;
        const record = lineToRecord(line, lineNo, { format, delimiter, headers });
        if (partition !== undefined) record.partition = partition;
        chunk.push(record);
        if (chunk.length >= PRODUCE_CHUNK_RECORDS) await send();
      }
      if (chunk.length > 0) await send();
      progressDone(io);
      if (cmd.output === "json") io.stdout(JSON.stringify({ topic, acknowledged: acked }));
      return EXIT.OK;
    });
  });
}

/** A progress line on stderr, only when stderr is a terminal (overwritten in place). */
function progress(io: CliIo, text: string): void {
  if (io !== CONSOLE_IO || !Deno.stderr.isTerminal()) return;
  Deno.stderr.writeSync(encoder.encode(`\r${text}`));
}

function progressDone(io: CliIo): void {
  if (io !== CONSOLE_IO || !Deno.stderr.isTerminal()) return;
  Deno.stderr.writeSync(encoder.encode("\n"));
}

/** Renders a record with a kcat-style template. */
export function renderRecord(template: string, topic: string, r: FetchedRecord): Uint8Array {
  const parts: Uint8Array[] = [];
  let text = "";
  const flushText = () => {
    if (text !== "") parts.push(encoder.encode(text));
    text = "";
  };
  const bytes = (b: Uint8Array | null) => {
    flushText();
    if (b) parts.push(b);
  };
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === "\\" && i + 1 < template.length) {
      const n = template[++i];
      text += n === "n" ? "\n" : n === "t" ? "\t" : n === "r" ? "\r" : n === "\\" ? "\\" : `\\${n}`;
      continue;
    }
    if (c !== "%" || i + 1 >= template.length) {
      text += c;
      continue;
    }
    const f = template[++i];
    switch (f) {
      case "t":
        text += topic;
        break;
      case "p":
        text += String(r.partition);
        break;
      case "o":
        text += String(r.offset);
        break;
      case "T":
        text += String(r.timestamp);
        break;
      case "k":
        bytes(r.key);
        break;
      case "s":
        bytes(r.value);
        break;
      case "K":
        text += String(r.key ? r.key.length : -1);
        break;
      case "S":
        text += String(r.value ? r.value.length : -1);
        break;
      case "h":
        text += r.headers.map((h) => `${h.key}=${h.value ? decoder.decode(h.value) : ""}`).join(
          ",",
        );
        break;
      case "%":
        text += "%";
        break;
      default:
        text += `%${f}`;
    }
  }
  flushText();
  return joinBytes(parts, parts.reduce((n, p) => n + p.length, 0));
}

function recordJson(topic: string, r: FetchedRecord): string {
  const text = (b: Uint8Array | null) => (b === null ? null : decoder.decode(b));
  return JSON.stringify({
    topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: text(r.key),
    value: text(r.value),
    headers: Object.fromEntries(r.headers.map((h) => [h.key, text(h.value)])),
  });
}

export async function runConsume(
  args: string[],
  io: CliIo = CONSOLE_IO,
  write: (bytes: Uint8Array) => void = (bytes) => {
    let at = 0;
    while (at < bytes.length) at += Deno.stdout.writeSync(bytes.subarray(at));
  },
  signal?: AbortSignal,
): Promise<number> {
  return await runCommand(io, "kafscale consume", async () => {
    const cmd = parseCommand(args, {
      "from-beginning": { type: "boolean" },
      offset: { type: "string", short: "O" },
      "from-time": { type: "string" },
      partition: { type: "string", short: "p" },
      count: { type: "string", short: "c" },
      end: { type: "boolean", short: "e" },
      format: { type: "string", short: "f" },
      group: { type: "string", short: "G" },
    });
    if (cmd.help) return (io.stdout(consumeHelp()), EXIT.OK);
    if (cmd.positionals.length !== 1) throw new UsageError("Expected one topic name");
    const topic = cmd.positionals[0];
    const v = cmd.values;
    const starts =
      [v["from-beginning"] === true, v.offset !== undefined, v["from-time"] !== undefined]
        .filter(Boolean).length;
    if (starts > 1) {
      throw new UsageError('Give at most one of "--from-beginning", "--offset" and "--from-time"');
    }
    const offset = v.offset === undefined
      ? undefined
      : parseInteger(v.offset as string, 'Option "--offset"', 0);
    let fromTime: number | undefined;
    if (typeof v["from-time"] === "string") {
      fromTime = Date.parse(v["from-time"]);
      if (Number.isNaN(fromTime)) {
        throw new UsageError(`Option "--from-time" takes an ISO date, got "${v["from-time"]}"`);
      }
    }
    const count = v.count === undefined
      ? Infinity
      : parseInteger(v.count as string, 'Option "--count"', 1);
    const onlyPartition = v.partition === undefined
      ? undefined
      : parseInteger(v.partition as string, 'Option "--partition"', 0);
    const format = (v.format as string | undefined) ?? "%s\\n";
    const group = v.group as string | undefined;
    if (
      group !== undefined && (group === "" || onlyPartition !== undefined || offset !== undefined)
    ) {
      throw new UsageError(
        'Option "--group" takes a group id, and goes with neither "--partition" nor "--offset"',
      );
    }
    return await withAdmin(cmd, async (admin) => {
      const cluster = await admin.metadata([topic]);
      const info = cluster.topics.find((t) => t.name === topic)!;
      let partitions = info.partitions.map((p) => p.partition).sort((a, b) => a - b);
      if (onlyPartition !== undefined) {
        if (!partitions.includes(onlyPartition)) {
          throw new AdminError(
            `Topic "${topic}" has ${partitions.length} partitions; there is no partition ` +
              onlyPartition,
          );
        }
        partitions = [onlyPartition];
      }
      const spec = v["from-beginning"] === true
        ? "earliest"
        : fromTime !== undefined
        ? { timestamp: fromTime }
        : "latest";
      const starts = (assigned: number[]) =>
        startPositions(admin, topic, assigned, spec, fromTime !== undefined);
      const member = group === undefined
        ? null
        : new GroupMember(admin, group, topic, partitions.length);
      let positions: Map<number, number>;
      if (member) {
        const assigned = await member.join();
        positions = await starts(assigned);
        const committed = await member.committed();
        for (const [p, at] of committed) if (at >= 0 && positions.has(p)) positions.set(p, at);
      } else {
        positions = await starts(partitions);
        if (offset !== undefined) { for (const p of partitions) positions.set(p, offset); }
      }
      let fetcher = new RecordFetcher(admin, topic, positions);
      /** The next offset after what was printed, per partition: what a group commits. */
      const delivered = new Map(positions);
      let printed = 0;
      let lastCommit = Date.now();
      // Ctrl-C or SIGTERM end a followed topic cleanly: a group member commits and leaves.
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      const signals: Deno.Signal[] = io === CONSOLE_IO ? ["SIGINT", "SIGTERM"] : [];
      for (const s of signals) Deno.addSignalListener(s, onSignal);
      try {
        // Bounded by --count, --end, the signal, or an interrupt of the process.
        while (printed < count && !signal?.aborted && !stop.signal.aborted) {
          if (member && await member.heartbeat()) {
            await member.commit(delivered).catch(() => undefined); // the generation may be gone
            const assigned = await member.join();
            positions = await starts(assigned);
            const committed = await member.committed();
            for (const [p, at] of committed) {
              if (at >= 0 && positions.has(p)) positions.set(p, at);
            }
            delivered.clear();
            for (const [p, at] of positions) delivered.set(p, at);
            fetcher = new RecordFetcher(admin, topic, positions);
          }
          if (fetcher.positions.size === 0) {
            if (v.end === true) break;
            await new Promise((r) => setTimeout(r, FETCH_WAIT_MS));
            continue;
          }
          const records = await fetcher.fetch(v.end === true ? 0 : FETCH_WAIT_MS);
          for (const r of records) {
            if (printed >= count) break;
            write(
              format === "json"
                ? encoder.encode(recordJson(topic, r) + "\n")
                : renderRecord(format, topic, r),
            );
            delivered.set(r.partition, r.offset + 1);
            printed++;
          }
          // Records go to a file or a pipe: count them on the terminal.
          if (records.length > 0 && !Deno.stdout.isTerminal()) {
            progress(io, `${printed} records`);
          }
          if (member && Date.now() - lastCommit >= AUTO_COMMIT_MS) {
            await member.commit(delivered);
            lastCommit = Date.now();
          }
          if (v.end === true && records.length === 0 && fetcher.atEnd()) break;
        }
        if (member) await member.commit(delivered);
        if (printed > 0 && !Deno.stdout.isTerminal()) progressDone(io);
      } finally {
        for (const s of signals) Deno.removeSignalListener(s, onSignal);
        await member?.leave();
      }
      return EXIT.OK;
    });
  });
}
