/**
 * lib/util/zero_tail_file.ts: small appends land in a tail of written zeros (the file's size, and
 * so its metadata, does not change under their fdatasync), large ones just grow the file, and what
 * was appended reads back at the positions returned. The latency it buys is measured by the
 * benchmark (README "Benchmark"), not here.
 */
import assert from "node:assert/strict";
import { isZeroFrom, ZeroTailFile } from "../../lib/util/zero_tail_file.ts";
import { LocalObjectStore } from "../../lib/storage/local_object_store.ts";

const pattern = (n: number, from = 0) =>
  Uint8Array.from({ length: n }, (_, i) => 1 + (from + i) % 250);

async function withFile(fn: (path: string, file: Deno.FsFile) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-zero-tail-" });
  const path = `${dir}/f`;
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    await fn(path, file);
  } finally {
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ZeroTailFile: small appends fill a zeroed tail; the file grows once per tail", async () => {
  await withFile(async (path, file) => {
    const appender = new ZeroTailFile(file, 0, 0, {
      zeroTailBytes: 64 * 1024,
      smallAppendBytes: 4096,
    });
    assert.equal(await appender.append(pattern(1000)), 0);
    assert.equal(appender.end, 1000);
    assert.equal((await Deno.stat(path)).size, 1000 + 64 * 1024, "data, then the zeroed tail");
    const sizes = new Set<number>();
    let end = 1000;
    for (let i = 0; i < 60; i++) {
      assert.equal(await appender.append(pattern(1000, end)), end);
      end += 1000;
      sizes.add((await Deno.stat(path)).size);
    }
    assert.deepEqual([...sizes], [1000 + 64 * 1024], "60 appends inside the tail: no growth");
    const bytes = await Deno.readFile(path);
    assert.deepEqual(bytes.subarray(0, end), pattern(end));
    assert.ok(isZeroFrom(bytes, end));
    // Past the tail: the next small append extends it again.
    for (let i = 0; i < 10; i++) {
      await appender.append(pattern(1000, end));
      end += 1000;
    }
    assert.equal(
      (await Deno.stat(path)).size,
      67_000 + 64 * 1024,
      "extended by the append that crossed",
    );
    assert.deepEqual((await Deno.readFile(path)).subarray(0, end), pattern(end));
  });
});

Deno.test("ZeroTailFile: a large append grows the file without zeros; off means plain appends", async () => {
  await withFile(async (path, file) => {
    const appender = new ZeroTailFile(file, 0, 0, {
      zeroTailBytes: 64 * 1024,
      smallAppendBytes: 4096,
    });
    await appender.append(pattern(10_000));
    assert.equal((await Deno.stat(path)).size, 10_000);
    await appender.append(pattern(100, 10_000));
    assert.equal((await Deno.stat(path)).size, 10_100 + 64 * 1024);
    // A large append after a small one overwrites what is left of the tail and grows past it.
    assert.equal(await appender.append(pattern(100_000, 10_100)), 10_100);
    assert.equal((await Deno.stat(path)).size, 110_100);
    assert.deepEqual(await Deno.readFile(path), pattern(110_100));
  });
  await withFile(async (path, file) => {
    const plain = new ZeroTailFile(file, 0, 0, { zeroTailBytes: 0, smallAppendBytes: 4096 });
    await plain.append(pattern(10));
    await plain.append(pattern(10, 10));
    assert.deepEqual(await Deno.readFile(path), pattern(20));
  });
});

Deno.test("ZeroTailFile: reopened at a known end, appends go there, not to the file's end", async () => {
  await withFile(async (path, file) => {
    const first = new ZeroTailFile(file, 0, 0, { zeroTailBytes: 8192, smallAppendBytes: 4096 });
    await first.append(pattern(500));
    const size = (await Deno.stat(path)).size;
    const again = new ZeroTailFile(file, 500, size, {
      zeroTailBytes: 8192,
      smallAppendBytes: 4096,
    });
    assert.equal(await again.append(pattern(500, 500)), 500);
    assert.equal((await Deno.stat(path)).size, size);
    const bytes = await Deno.readFile(path);
    assert.deepEqual(bytes.subarray(0, 1000), pattern(1000));
    assert.ok(isZeroFrom(bytes, 1000));
  });
});

Deno.test("LocalObjectStore: appendZeroTail keeps write-ahead files' tails zeroed; reads by range", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-zero-tail-store-" });
  const store = new LocalObjectStore(dir, {
    appendZeroTail: { zeroTailBytes: 32 * 1024, smallAppendBytes: 4096 },
  });
  try {
    const file = await store.createAppendable("w/f.wal");
    assert.equal(await file.append(pattern(300)), 0);
    assert.equal(await file.append(pattern(300, 300)), 300);
    assert.equal(file.size, 600, "size is what was appended");
    assert.deepEqual(await store.getRange("w/f.wal", 250, 350), pattern(100, 250));
    assert.deepEqual(store.readRangeSync("w/f.wal", 0, 600), pattern(600));
    assert.deepEqual(await store.list("w/"), [{ key: "w/f.wal", size: 300 + 32 * 1024 }]);
    await file.close();
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
