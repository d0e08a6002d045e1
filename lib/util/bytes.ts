/** Joining byte chunks: one copy into one buffer, and runs of small chunks for writes. */

/** The concatenation of `chunks` (`size` bytes in all) in one new buffer: one copy of each. */
export function joinBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * `chunks` in order, as writes: a chunk over `smallMax` bytes goes as it is; runs of consecutive
 * smaller ones are joined (one copy) into buffers of at most `joinMax` bytes, a run of one going as
 * it is. Each write is a system call, and each awaited one a turn of the event loop: many small
 * chunks (the batches of many responses, the ranges of a sealed segment) cost few of them.
 */
export function* coalesceWrites(
  chunks: readonly Uint8Array[],
  smallMax: number,
  joinMax: number,
): Generator<Uint8Array> {
  for (let i = 0; i < chunks.length;) {
    let end = i;
    let size = 0;
    let taken = 0;
    let last = i;
    while (
      end < chunks.length && chunks[end].length <= smallMax &&
      size + chunks[end].length <= joinMax
    ) {
      if (chunks[end].length > 0) {
        taken++;
        last = end;
      }
      size += chunks[end].length;
      end++;
    }
    if (end === i) {
      yield chunks[i]; // over smallMax (or joinMax): as it is
      i++;
      continue;
    }
    if (taken === 1) yield chunks[last];
    else if (taken > 1) yield joinBytes(chunks.slice(i, end), size);
    i = end;
  }
}
