/**
 * The interface every compression adapter of the compactor implements, and
 * the error they raise. Each adapter file wraps exactly one outside library
 * (or a `node:` built-in) so that a codec can be swapped in one place.
 *
 * Owns: `RecordCodec`, `CodecError`. Pure computation, no I/O.
 */

/** Decompresses and compresses the records section of a Kafka v2 batch. */
export interface RecordCodec {
  /** Kafka's name for the codec, for messages. */
  readonly name: string;
  /**
   * Inflates `payload`. Throws CodecError when the bytes are not valid for
   * the codec or would inflate past `maxBytes` (a decompression-bomb guard).
   */
  decompress(payload: Uint8Array, maxBytes: number): Uint8Array;
  /**
   * Deflates `data`. `like` is the payload this one replaces: adapters with
   * more than one framing in the wild (snappy) write the framing it used, so
   * a rewritten batch reads with whatever decoder read the original.
   */
  compress(data: Uint8Array, like?: Uint8Array): Uint8Array;
}

/** A payload the codec cannot decode (or encode). */
export class CodecError extends Error {
  override name = "CodecError";
}

/** Wraps an outside library's failure in a CodecError naming the codec. */
export function codecFailure(codec: string, what: string, cause: unknown): CodecError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new CodecError(`Cannot ${what} "${codec}" payload: ${message}`);
}
