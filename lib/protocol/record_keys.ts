/**
 * Which records of an uncompressed records section have no key (a null key,
 * length -1; an empty key is a key, as in Kafka's DefaultRecord.hasKey).
 * Compacted topics refuse such records (Kafka's LogValidator). Pure; reads
 * only, never decodes values or headers.
 */
import { type ByteCursor, readVarint, readVarlong, RecordFormatError } from "./record_batch.ts";

/**
 * Indexes (0-based, within the section) of the records in `buf[start, end)`
 * whose key is null. The framing must already be valid (validateBatches
 * walks uncompressed batches; a decompressed section is walked here too):
 * malformed bytes throw RecordFormatError. Bounded by `count`.
 */
export function keylessRecordIndexes(
  buf: Uint8Array,
  start: number,
  end: number,
  count: number,
): number[] {
  const cursor: ByteCursor = { pos: start };
  const keyless: number[] = [];
  for (let i = 0; i < count; i++) {
    const bodyLength = readVarint(buf, cursor, end);
    const bodyEnd = cursor.pos + bodyLength;
    if (bodyLength < 1 || bodyEnd > end) {
      throw new RecordFormatError(`Record ${i} declares ${bodyLength} bytes`);
    }
    cursor.pos++; // attributes
    readVarlong(buf, cursor, bodyEnd); // timestampDelta
    readVarint(buf, cursor, bodyEnd); // offsetDelta
    if (readVarint(buf, cursor, bodyEnd) < 0) keyless.push(i);
    cursor.pos = bodyEnd;
  }
  return keyless;
}
