/**
 * Bounded concurrency for store calls: `mapBounded` runs an async function
 * over items with at most `limit` calls in flight, and settles every call
 * before returning (so no write is still running when the caller moves on).
 */

export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  if (!(Number.isSafeInteger(limit) && limit > 0)) {
    throw new RangeError(`Concurrency limit must be a positive integer, got ${limit}`);
  }
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    // Bounded by items.length: each iteration takes one item.
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: "fulfilled", value: await fn(items[i], i) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The first rejection's reason among settled results, or undefined. */
export function firstRejection(results: readonly PromiseSettledResult<unknown>[]): unknown {
  for (const r of results) if (r.status === "rejected") return r.reason;
  return undefined;
}
