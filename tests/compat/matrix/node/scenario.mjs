// The matrix scenario for the JavaScript programs (kafkajs under Node, @platformatic/kafka under
// Deno): command line, record plan, checker, cell reporting. Same record shape and protocol as
// tests/compat/matrix/python/scenario.py; see tests/compat/matrix/README.md.

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import process from "node:process";

/**
 * The connection's security from the KAFSCALE_MATRIX_SECURITY_* environment (README "Security"),
 * or undefined for PLAINTEXT: `{ protocol, mechanism, username, password, ca, cert, key }`, the
 * last three the PEM text of KAFSCALE_MATRIX_SSL_CA_FILE, _CERT_FILE and _KEY_FILE when set.
 */
export function security() {
  const env = process.env;
  const protocol = env.KAFSCALE_MATRIX_SECURITY_PROTOCOL;
  if (!protocol || protocol === "PLAINTEXT") return undefined;
  const caFile = env.KAFSCALE_MATRIX_SSL_CA_FILE;
  return {
    protocol,
    tls: protocol === "SSL" || protocol === "SASL_SSL",
    sasl: protocol.startsWith("SASL_"),
    mechanism: env.KAFSCALE_MATRIX_SASL_MECHANISM ?? "PLAIN",
    username: env.KAFSCALE_MATRIX_SASL_USERNAME ?? "",
    password: env.KAFSCALE_MATRIX_SASL_PASSWORD ?? "",
    ca: caFile ? readFileSync(caFile, "utf8") : undefined,
    cert: env.KAFSCALE_MATRIX_SSL_CERT_FILE
      ? readFileSync(env.KAFSCALE_MATRIX_SSL_CERT_FILE, "utf8")
      : undefined,
    key: env.KAFSCALE_MATRIX_SSL_KEY_FILE
      ? readFileSync(env.KAFSCALE_MATRIX_SSL_KEY_FILE, "utf8")
      : undefined,
  };
}

/** The TLS options node:tls takes from security(): CA, client certificate and key when set. */
export function tlsOptions(sec) {
  const out = {};
  if (sec.ca) out.ca = sec.ca;
  if (sec.cert) out.cert = sec.cert;
  if (sec.key) out.key = sec.key;
  return out;
}

export const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"];
export const CELLS = [
  "create",
  ...CODECS.map((c) => `produce:${c}`),
  "consume",
  "commit",
  "describe",
  "delete",
];
const VALUE_BYTES = 100;
const DEFAULT_DEADLINE_S = 120;
/** Problems listed in a failure detail before the rest are only counted. */
const ERRORS_SHOWN_MAX = 5;
/** Characters of a failure detail kept in a cell line. */
const DETAIL_CHARS_MAX = 600;

export const keyOf = (j) => `k-${j}`;
export function valueOf(j) {
  const head = `v-${j}-`;
  return head + "x".repeat(Math.max(0, VALUE_BYTES - head.length));
}
export const headersOf = (j) => ({ h1: String(j), h2: "x" });

/** A step's check failed; the message says what was expected and what came. */
export class CellFailure extends Error {}

export function parseArgs(usage) {
  const argv = process.argv.slice(2);
  const positional = [];
  let deadlineS = DEFAULT_DEADLINE_S;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--deadline-s") deadlineS = Number(argv[++i]);
    else positional.push(argv[i]);
  }
  const [bootstrap, topic, group, partitions, count, compressedCount] = positional;
  const args = {
    bootstrap,
    topic,
    group,
    partitions: Number(partitions),
    count: Number(count),
    compressedCount: Number(compressedCount),
    deadlineAt: Date.now() + deadlineS * 1000,
  };
  if (
    positional.length !== 6 || !(args.partitions >= 1) || !(args.count >= 1) ||
    !(args.compressedCount >= 1) || !(deadlineS > 0)
  ) {
    console.error(
      `Usage: ${usage} BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT ` +
        "[--deadline-s S]",
    );
    process.exit(2);
  }
  return args;
}

/** Which record numbers each supported codec produces (contiguous, in CODECS order). */
export class Plan {
  constructor(codecs, count, compressedCount) {
    this.ranges = new Map();
    let start = 0;
    for (const codec of codecs) {
      const n = codec === "none" ? count : compressedCount;
      this.ranges.set(codec, { start, end: start + n });
      start += n;
    }
    this.total = start;
  }

  codecOf(j) {
    for (const [codec, r] of this.ranges) if (j >= r.start && j < r.end) return codec;
    return "?";
  }
}

/**
 * Checks consumed records: every j once, exact key, value and headers, offsets per partition
 * contiguous from 0, every partition used. Keys, values and header values are Buffers or strings.
 */
export class Verifier {
  constructor(plan, partitions) {
    this.plan = plan;
    this.partitions = partitions;
    this.seen = new Uint8Array(plan.total);
    this.unique = 0;
    this.offsets = new Map();
    this.errors = [];
    this.errorCount = 0;
  }

  error(message) {
    this.errorCount++;
    if (this.errors.length < ERRORS_SHOWN_MAX) this.errors.push(message);
  }

  /** `headers`: [name, value] pairs in record order. */
  add(partition, offset, key, value, headers) {
    const where = `partition ${partition} offset ${offset}`;
    if (!(partition >= 0 && partition < this.partitions)) {
      this.error(`${where}: partition out of range 0..${this.partitions - 1}`);
      return;
    }
    if (!this.offsets.has(partition)) this.offsets.set(partition, []);
    this.offsets.get(partition).push(Number(offset));
    const text = key == null ? "" : String(key);
    const match = /^k-(\d+)$/.exec(text);
    const j = match ? Number(match[1]) : -1;
    if (!(j >= 0 && j < this.plan.total)) {
      this.error(`${where}: unexpected key ${JSON.stringify(text)}`);
      return;
    }
    if (this.seen[j]) {
      this.error(`${where}: duplicate record "${text}"`);
      return;
    }
    this.seen[j] = 1;
    this.unique++;
    if (value == null || !Buffer.from(valueOf(j)).equals(Buffer.from(value))) {
      this.error(`${where}: value of "${text}" is ${JSON.stringify(String(value).slice(0, 40))}`);
    }
    const got = JSON.stringify(headers.map(([k, v]) => [String(k), String(v)]));
    const want = JSON.stringify(Object.entries(headersOf(j)));
    if (got !== want) this.error(`${where}: headers of "${text}" are ${got}, want ${want}`);
  }

  /** The findings as one string ("" when every record came back exactly). */
  problems() {
    const missingByCodec = {};
    let missing = 0;
    for (let j = 0; j < this.plan.total; j++) {
      if (this.seen[j]) continue;
      missing++;
      const codec = this.plan.codecOf(j);
      missingByCodec[codec] = (missingByCodec[codec] ?? 0) + 1;
    }
    if (missing > 0) {
      this.error(
        `${missing} of ${this.plan.total} records missing: ${JSON.stringify(missingByCodec)}`,
      );
    }
    for (const [partition, offsets] of this.offsets) {
      const ordered = [...offsets].sort((a, b) => a - b);
      const gap = ordered.findIndex((o, i) => o !== i);
      if (gap >= 0) {
        this.error(`partition ${partition}: offsets not contiguous from 0 at position ${gap}`);
      }
    }
    if (this.plan.total >= 100 * this.partitions && this.offsets.size < this.partitions) {
      this.error(`only ${this.offsets.size} of ${this.partitions} partitions got records`);
    }
    if (this.errorCount === 0) return "";
    return `${this.errorCount} problems: ${this.errors.join("; ")}`;
  }
}

/** Runs the steps and prints one JSON line per cell; `finish` prints the summary. */
export class Cells {
  constructor(client) {
    this.client = client;
    this.results = new Map();
  }

  #emit(cell, status, ms, detail = "") {
    const line = { cell, status, ms };
    if (detail) line.detail = detail.slice(0, DETAIL_CHARS_MAX);
    this.results.set(cell, line);
    console.log(JSON.stringify(line));
    if (status === "fail") console.error(`${this.client} ${cell}: ${detail}`);
  }

  /** Runs `step()`; a throw fails the cell. Returns the step's value or undefined. */
  async run(cell, step) {
    const start = Date.now();
    try {
      const value = await step();
      this.#emit(cell, "pass", Date.now() - start);
      return value;
    } catch (err) {
      const detail = err instanceof CellFailure ? err.message : `${err?.name}: ${err?.message}`;
      this.#emit(cell, "fail", Date.now() - start, detail);
      return undefined;
    }
  }

  notApplicable(cell, reason) {
    this.#emit(cell, "n/a", 0, reason);
  }

  finish(version) {
    for (const cell of CELLS) {
      if (!this.results.has(cell)) this.#emit(cell, "fail", 0, "the program never ran this step");
    }
    const ok = [...this.results.values()].every((r) => r.status !== "fail");
    console.log(JSON.stringify({ client: this.client, version, ok }));
    return ok ? 0 : 1;
  }
}

/** Checks a described group: Stable, one member, which owns every partition of `topic`. */
export function checkGroup(state, protocolType, assignments, topic, partitions) {
  if (String(state).replace(/_/g, "").toLowerCase() !== "stable") {
    throw new CellFailure(`group state is "${state}", want "Stable" while the consumer is in it`);
  }
  if (protocolType !== "consumer") {
    throw new CellFailure(`protocol type is "${protocolType}", want "consumer"`);
  }
  if (assignments.length !== 1) {
    throw new CellFailure(`group has ${assignments.length} members, want 1`);
  }
  const want = JSON.stringify({ [topic]: Array.from({ length: partitions }, (_, i) => i) });
  const got = JSON.stringify(
    Object.fromEntries(
      Object.entries(assignments[0]).map(([t, ps]) => [t, [...ps].sort((a, b) => a - b)]),
    ),
  );
  if (got !== want) throw new CellFailure(`member assignment is ${got}, want ${want}`);
}

/** Committed offsets must equal every partition's end offset ({partition: offset} objects). */
export function checkCommitted(committed, ends) {
  const got = JSON.stringify(committed);
  const want = JSON.stringify(ends);
  if (got !== want) {
    throw new CellFailure(`committed offsets ${got} differ from end offsets ${want}`);
  }
}

/** Polls `condition` until it holds or `deadlineAt` passes. */
export async function until(condition, deadlineAt, what) {
  while (!(await condition())) {
    if (Date.now() > deadlineAt) throw new CellFailure(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
