/**
 * Kafka's JSON message schemas from the `org.apache.kafka:kafka-clients` jars on Maven Central, so
 * a clone of the repository can regenerate the codecs without `../shared`:
 * `deno task gen --from-jars`. Each jar is taken from the local Maven repository (~/.m2) when
 * present, otherwise downloaded, and must match its pinned SHA-256 either way; the
 * `common/message/*.json` entries are unpacked into `.tools/kafka-schemas/<version>/`.
 *
 * kafka-clients 3.9.1 + 4.4.0 generate exactly the committed codecs (the 3.9 set in ../shared is
 * a pre-release commit whose differences do not reach the generated code).
 */

import { fileURLToPath } from "node:url";

export interface SchemaJar {
  version: string;
  sha256: string;
}

export const OLDER_JAR: SchemaJar = {
  version: "3.9.1",
  sha256: "7568b998572d256f0b7bc0afdc1b7a2588b8b08415c62ce314c864a6851ae9d9",
};
export const NEWER_JAR: SchemaJar = {
  version: "4.4.0",
  sha256: "1ab07317eb6633241392449d329dbdc5d9251e6ffc4926860f42dd966e88bdf9",
};

const MAVEN_CENTRAL = "https://repo1.maven.org/maven2";
const ENTRY_PREFIX = "common/message/";
/** End-of-central-directory record: 22 bytes plus a comment of at most 65535. */
const EOCD_MAX_BYTES = 22 + 0xffff;

function jarName(version: string): string {
  return `kafka-clients-${version}.jar`;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function jarBytes(jar: SchemaJar): Promise<Uint8Array<ArrayBuffer>> {
  const name = jarName(jar.version);
  const home = Deno.env.get("HOME");
  const local = home === undefined
    ? undefined
    : `${home}/.m2/repository/org/apache/kafka/kafka-clients/${jar.version}/${name}`;
  let bytes: Uint8Array<ArrayBuffer> | undefined;
  let from = local;
  if (local !== undefined) {
    try {
      bytes = await Deno.readFile(local);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  if (bytes === undefined) {
    from = `${MAVEN_CENTRAL}/org/apache/kafka/kafka-clients/${jar.version}/${name}`;
    const res = await fetch(from);
    if (!res.ok) throw new Error(`Cannot download ${from}: HTTP ${res.status}`);
    bytes = new Uint8Array(await res.arrayBuffer());
  }
  const sum = await sha256Hex(bytes);
  if (sum !== jar.sha256) {
    throw new Error(`${from}: SHA-256 ${sum} does not match the pinned ${jar.sha256}`);
  }
  return bytes;
}

async function inflateRaw(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The `common/message/*.json` entries of a jar: file name -> text. */
export async function schemaEntries(
  jar: Uint8Array<ArrayBuffer>,
): Promise<Map<string, string>> {
  const view = new DataView(jar.buffer, jar.byteOffset, jar.byteLength);
  let eocd = -1;
  for (let i = jar.length - 22; i >= Math.max(0, jar.length - EOCD_MAX_BYTES); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("Not a zip file: no end of central directory");
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const out = new Map<string, string>();
  const dec = new TextDecoder("utf-8", { fatal: true });
  for (let n = 0; n < count; n++) {
    if (view.getUint32(p, true) !== 0x02014b50) throw new Error("Corrupt zip central directory");
    const method = view.getUint16(p + 10, true);
    const compressedSize = view.getUint32(p + 20, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const localOffset = view.getUint32(p + 42, true);
    const name = dec.decode(jar.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (!name.startsWith(ENTRY_PREFIX) || !name.endsWith(".json")) continue;
    const base = name.slice(ENTRY_PREFIX.length);
    if (base.includes("/")) continue;
    if (view.getUint32(localOffset, true) !== 0x04034b50) throw new Error(`Corrupt entry ${name}`);
    const start = localOffset + 30 + view.getUint16(localOffset + 26, true) +
      view.getUint16(localOffset + 28, true);
    const data = jar.subarray(start, start + compressedSize);
    if (method === 0) out.set(base, dec.decode(data));
    else if (method === 8) out.set(base, dec.decode(await inflateRaw(data)));
    else throw new Error(`${name}: unsupported zip method ${method}`);
  }
  if (out.size === 0) throw new Error(`No ${ENTRY_PREFIX}*.json entries in the jar`);
  return out;
}

function cacheRoot(): string {
  return fileURLToPath(new URL("../.tools/kafka-schemas", import.meta.url));
}

/** Unpacks a jar's schemas (verified) into the cache; returns the folder. */
export async function schemaDirFromJar(jar: SchemaJar): Promise<string> {
  const dir = `${cacheRoot()}/${jar.version}-${jar.sha256.slice(0, 12)}`;
  const entries = await schemaEntries(await jarBytes(jar));
  const tmp = `${dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  for (const [name, text] of entries) await Deno.writeTextFile(`${tmp}/${name}`, text);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dir);
  return dir;
}
