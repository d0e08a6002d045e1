/**
 * The shape every generated message codec has, plus the few helpers generated code shares
 * (tagged-field writing, decode errors). Hand-written; the codecs themselves live in
 * `lib/protocol/generated/` and come from `scripts/gen_protocol.ts`.
 *
 * Must not do I/O or import anything outside `lib/protocol/`.
 */

import { DecodeError, type Reader, type Writer } from "./primitives.ts";

/** Reads and writes one Kafka message (or header) in any of its versions. */
export interface MessageCodec<T> {
  readonly name: string;
  /** The API key, or -1 for the request/response headers. */
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version (compact encodings, tagged fields); -1 when never flexible. */
  readonly flexibleMinVersion: number;
  /** Throws DecodeError on malformed input or a version outside min..max. */
  read(r: Reader, version: number): T;
  /** Throws RangeError for a version outside min..max or a null in a non-nullable field. */
  write(w: Writer, value: T, version: number): void;
}

/** A tagged field kept as raw bytes (tags this code does not know, KIP-482). */
export interface TaggedField {
  tag: number;
  data: Uint8Array;
}

/** One API key: its version range and the codecs of its request and response bodies. */
export interface ApiSchema {
  readonly apiKey: number;
  /** Kafka's name for the API, e.g. "Produce". */
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version, or -1. */
  readonly flexibleMinVersion: number;
  readonly request: MessageCodec<unknown>;
  readonly response: MessageCodec<unknown>;
}

/** Writes the tagged-field section: known fields (already encoded) merged with unknown ones. */
export function writeTaggedFields(
  w: Writer,
  known: TaggedField[] | undefined,
  unknown: TaggedField[] | undefined,
): void {
  let all: TaggedField[];
  if (unknown === undefined || unknown.length === 0) {
    if (known === undefined || known.length === 0) {
      w.uvarint(0);
      return;
    }
    all = known;
  } else {
    all = known === undefined ? unknown : known.concat(unknown);
  }
  if (!isSortedStrictly(all)) {
    all = all.slice().sort((a, b) => a.tag - b.tag);
    if (!isSortedStrictly(all)) {
      throw new RangeError(
        `Tagged fields have a duplicate tag: ${
          all.map((f) => f.tag).join(",")
        }; tags must be unique`,
      );
    }
  }
  w.uvarint(all.length);
  for (const f of all) {
    w.uvarint(f.tag);
    w.uvarint(f.data.length);
    w.raw(f.data);
  }
}

/** Reads a tagged-field section in which no tag is known; undefined when it is empty. */
export function readUnknownTaggedFields(r: Reader): TaggedField[] | undefined {
  const n = r.taggedFieldCount();
  if (n === 0) return undefined;
  const fields: TaggedField[] = [];
  for (let i = 0; i < n; i++) {
    const tag = r.uvarint();
    const end = r.taggedFieldEnd();
    // Copied so a retained unknown field does not pin the whole request buffer.
    fields.push({ tag, data: r.raw(end - r.offset).slice() });
  }
  return fields;
}

function isSortedStrictly(fields: TaggedField[]): boolean {
  for (let i = 1; i < fields.length; i++) {
    if (fields[i - 1].tag >= fields[i].tag) return false;
  }
  return true;
}

/** Error for a null length in a field that is not nullable in the version being read. */
export function nullFieldError(field: string, version: number): DecodeError {
  return new DecodeError(`Field "${field}" is not nullable in version ${version} but was null`);
}

/** Error for writing null into a field that is not nullable in `version`. */
export function nullWriteError(field: string, version: number): RangeError {
  return new RangeError(
    `Cannot write null to "${field}" in version ${version}: it is not nullable there`,
  );
}

/** Error for reading a version the schema does not define. */
export function unsupportedReadVersion(
  name: string,
  version: number,
  min: number,
  max: number,
): DecodeError {
  return new DecodeError(`Cannot decode ${name} version ${version}: versions are ${min}-${max}`);
}

/** Error for writing a version the schema does not define. */
export function unsupportedWriteVersion(
  name: string,
  version: number,
  min: number,
  max: number,
): RangeError {
  return new RangeError(`Cannot encode ${name} version ${version}: versions are ${min}-${max}`);
}
