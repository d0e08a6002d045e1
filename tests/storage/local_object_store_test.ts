import assert from "node:assert/strict";
import {
  LocalObjectStore,
  READ_PIECE_BYTES,
  SPARE_FILES_DIR,
  TEMP_FILE_PREFIX,
} from "../../lib/storage/local_object_store.ts";
import {
  ObjectStoreError,
  PACED_PIECE_BYTES,
  PreconditionFailedError,
} from "../../lib/storage/object_store.ts";
import { joinBytes } from "../../lib/util/bytes.ts";
import { objectStoreConformance } from "./object_store_conformance.ts";

async function withStore(fn: (store: LocalObjectStore, root: string) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  const store = new LocalObjectStore(root);
  try {
    await fn(store, root);
  } finally {
    await store.close();
    await Deno.remove(root, { recursive: true });
  }
}

objectStoreConformance("LocalObjectStore", async () => {
  const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  const store = new LocalObjectStore(root);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await Deno.remove(root, { recursive: true });
    },
  };
});

objectStoreConformance("LocalObjectStore in a root that does not exist yet", async () => {
  const parent = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  const store = new LocalObjectStore(`${parent}/not/yet/there`);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await Deno.remove(parent, { recursive: true });
    },
  };
});

Deno.test("LocalObjectStore: keys map to files under the root", async () => {
  await withStore(async (store, root) => {
    await store.put("default/orders/0/segment-00000000000000000000.kfs", new Uint8Array([7]));
    const onDisk = await Deno.readFile(`${root}/default/orders/0/segment-00000000000000000000.kfs`);
    assert.deepEqual(onDisk, new Uint8Array([7]));
  });
});

Deno.test("LocalObjectStore: rejects keys that escape the root or collide with temp files", async () => {
  await withStore(async (store) => {
    const bad = [
      "",
      "/abs",
      "a//b",
      "a/",
      "../x",
      "a/../../x",
      "a/./b",
      "a\\b",
      `a/${TEMP_FILE_PREFIX}x`,
      ".",
    ];
    for (const key of bad) {
      await assert.rejects(() => store.put(key, new Uint8Array(1)), TypeError, `put "${key}"`);
      await assert.rejects(() => store.get(key), TypeError, `get "${key}"`);
      await assert.rejects(() => store.getRange(key, 0, 1), TypeError, `getRange "${key}"`);
      await assert.rejects(() => store.delete(key), TypeError, `delete "${key}"`);
    }
    assert.deepEqual(await store.list("../"), []);
    assert.deepEqual(await store.list("a//"), []);
  });
});

Deno.test("LocalObjectStore: temp files are hidden from list and removed by cleanup", async () => {
  await withStore(async (store, root) => {
    await store.put("t/0/a", new Uint8Array([1]));
    // What a put that crashed before publishing leaves behind.
    await Deno.writeFile(`${root}/t/0/${TEMP_FILE_PREFIX}deadbeef`, new Uint8Array(10));
    await Deno.mkdir(`${root}/other`);
    await Deno.writeFile(`${root}/other/${TEMP_FILE_PREFIX}cafe`, new Uint8Array(3));
    assert.deepEqual(await store.list(""), [{ key: "t/0/a", size: 1 }]);
    assert.deepEqual(await store.list("t/0/."), []);
    assert.equal(await store.cleanupTempFiles({ minAgeMs: 60_000 }), 0, "too young");
    assert.equal(await store.cleanupTempFiles(), 2);
    const left = await Array.fromAsync(Deno.readDir(`${root}/t/0`));
    assert.deepEqual(left.map((e) => e.name), ["a"]);
    assert.equal(await store.cleanupTempFiles(), 0);
  });
});

Deno.test("LocalObjectStore: cleanup leaves temp files of puts in flight alone", async () => {
  const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  let removedMidPut = -1;
  const store: LocalObjectStore = new LocalObjectStore(root, {
    beforePublish: async () => {
      removedMidPut = await store.cleanupTempFiles();
    },
  });
  try {
    await store.put("f/a", new Uint8Array([1, 2]));
    assert.equal(removedMidPut, 0);
    assert.deepEqual(await store.get("f/a"), new Uint8Array([1, 2]));
  } finally {
    await store.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("LocalObjectStore: a put that dies before publishing leaves no visible object", async () => {
  const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  const store = new LocalObjectStore(root, {
    beforePublish: () => Promise.reject(new Error("simulated crash")),
  });
  try {
    await assert.rejects(() => store.put("g/a", new Uint8Array([1])), ObjectStoreError);
    assert.equal(await store.get("g/a"), null);
    assert.deepEqual(await store.list(""), []);
  } finally {
    await store.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("LocalObjectStore: no temp files remain after puts, failed or not", async () => {
  await withStore(async (store, root) => {
    await store.put("x/a", new Uint8Array([1]));
    await store.put("x/a", new Uint8Array([2]));
    await assert.rejects(() => store.put("x/a", new Uint8Array([3]), { ifNoneMatch: true }));
    const names = (await Array.fromAsync(Deno.readDir(`${root}/x`))).map((e) => e.name);
    assert.deepEqual(names, ["a"]);
  });
});

Deno.test("LocalObjectStore: a key that is a directory reads as missing", async () => {
  await withStore(async (store) => {
    await store.put("dir/child", new Uint8Array([1]));
    assert.equal(await store.get("dir"), null);
    assert.equal(await store.getRange("dir", 0, 1), null);
    assert.equal(await store.get("dir/child/grandchild"), null);
  });
});

Deno.test("LocalObjectStore: I/O failures become ObjectStoreError naming the key", async () => {
  await withStore(async (store) => {
    await store.put("file", new Uint8Array([1]));
    // "file" is a file, so "file/sub" cannot be created.
    const error = await store.put("file/sub", new Uint8Array([1])).then(() => null, (e) => e);
    assert.ok(error instanceof ObjectStoreError, String(error));
    assert.match(error.message, /"file\/sub"/);
  });
});

Deno.test("LocalObjectStore: calls after close fail", async () => {
  await withStore(async (store) => {
    await store.close();
    await assert.rejects(() => store.get("a"), ObjectStoreError);
    await assert.rejects(() => store.put("a", new Uint8Array(1)), ObjectStoreError);
    await assert.rejects(() => store.list(""), ObjectStoreError);
  });
});

Deno.test("LocalObjectStore: relaxed puts (durable: false) publish the same way", async () => {
  const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  const store = new LocalObjectStore(root);
  try {
    const data = new Uint8Array([9, 8, 7]);
    await store.put("ns/t/0/segment-00000000000000000000.index", data, {
      durable: false,
      ifNoneMatch: true,
    });
    assert.deepEqual(await store.get("ns/t/0/segment-00000000000000000000.index"), data);
    await assert.rejects(
      store.put("ns/t/0/segment-00000000000000000000.index", data, {
        durable: false,
        ifNoneMatch: true,
      }),
      (e) => e instanceof ObjectStoreError && e.name === "PreconditionFailedError",
    );
    await store.put("ns/t/0/x", data, { durable: false });
    assert.deepEqual(await store.get("ns/t/0/x"), data);
  } finally {
    await store.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("LocalObjectStore: readRangeSync reads by position, sees appends, and forgets deleted files", async () => {
  await withStore(async (store) => {
    const bytes = (n: number, from = 0) =>
      Uint8Array.from({ length: n }, (_, i) => (from + i) % 251);
    await store.put("a/one", bytes(1000));
    assert.deepEqual(store.readRangeSync("a/one", 10, 20), bytes(10, 10));
    assert.deepEqual(store.readRangeSync("a/one", 990, 2000), bytes(10, 990), "short at the end");
    assert.equal(store.readRangeSync("a/missing", 0, 10), null);
    // An appendable object (a write-ahead file): reads see what was appended since.
    const file = await store.createAppendable("a/wal");
    await file.append(bytes(100));
    assert.deepEqual(store.readRangeSync("a/wal", 0, 100), bytes(100));
    await file.append(bytes(100, 100));
    assert.deepEqual(store.readRangeSync("a/wal", 150, 200), bytes(50, 150));
    await file.close();
    // A deleted and re-created key reads the new file, not the old descriptor.
    await store.delete("a/one");
    assert.equal(store.readRangeSync("a/one", 0, 10), null);
    await store.put("a/one", bytes(10, 7));
    assert.deepEqual(store.readRangeSync("a/one", 0, 10), bytes(10, 7));
    // More files than descriptors kept: the oldest are closed and reopened when needed.
    for (let i = 0; i < 80; i++) await store.put(`b/${i}`, bytes(4, i));
    for (let i = 0; i < 80; i++) assert.deepEqual(store.readRangeSync(`b/${i}`, 0, 4), bytes(4, i));
    assert.deepEqual(store.readRangeSync("b/0", 0, 4), bytes(4, 0));
  });
});

Deno.test("LocalObjectStore: a paced put asks the pacer before each piece and writes every byte", async () => {
  await withStore(async (store) => {
    const parts = [new Uint8Array(600 * 1024), new Uint8Array(10), new Uint8Array(300 * 1024)];
    parts.forEach((p, i) => p.forEach((_, j) => (p[j] = (i * 31 + j) & 0xff)));
    const asked: number[] = [];
    let release: (() => void) | null = null;
    const put = store.putParts("t/0/segment.kfs", parts, {
      ifNoneMatch: true,
      pace: (bytes) => {
        asked.push(bytes);
        // The third piece is held: nothing may be published before the pacer lets it go.
        return asked.length === 3 ? new Promise((r) => (release = r)) : Promise.resolve();
      },
    });
    for (let i = 0; i < 1_000 && !release; i++) await new Promise((r) => setTimeout(r, 1));
    assert.ok(release, "the third piece reached the pacer");
    assert.equal(await store.get("t/0/segment.kfs"), null, "not published while paced");
    (release as () => void)();
    await put;
    assert.ok(asked.every((n) => n > 0 && n <= PACED_PIECE_BYTES), `pieces ${asked}`);
    assert.equal(asked.reduce((a, b) => a + b, 0), 600 * 1024 + 10 + 300 * 1024);
    const total = new Uint8Array(600 * 1024 + 10 + 300 * 1024);
    let at = 0;
    for (const p of parts) {
      total.set(p, at);
      at += p.length;
    }
    assert.deepEqual(await store.get("t/0/segment.kfs"), total);
  });
});

Deno.test("LocalObjectStore: a put of many small parts is a few writes, not one per part", async () => {
  await withStore(async (store) => {
    // A segment sealed from 1,000 one-record ranges: one paced piece of 100 KB.
    const parts = Array.from({ length: 1_000 }, (_, i) => new Uint8Array(100).fill(i & 0xff));
    const asked: number[] = [];
    await store.putParts("t/0/small.kfs", parts, {
      ifNoneMatch: true,
      pace: (bytes) => {
        asked.push(bytes);
        return Promise.resolve();
      },
    });
    assert.deepEqual(asked, [100_000]);
    assert.deepEqual(await store.get("t/0/small.kfs"), joinBytes(parts, 100_000));
  });
});

Deno.test("LocalObjectStore: putStream writes groups as they come, joins small ones into pieces, and publishes at the end", async () => {
  await withStore(async (store) => {
    const groups = Array.from(
      { length: 300 },
      (_, i) => [new Uint8Array(1_000).fill(i & 0xff), new Uint8Array(24).fill(7)],
    );
    const asked: number[] = [];
    let pulled = 0;
    let publishedWhilePulling = false;
    async function* source() {
      for (const group of groups) {
        pulled++;
        if (pulled === 200) publishedWhilePulling = (await store.get("t/0/s.kfs")) !== null;
        yield group;
      }
    }
    await store.putStream("t/0/s.kfs", source(), {
      ifNoneMatch: true,
      pace: (bytes) => {
        asked.push(bytes);
        return Promise.resolve();
      },
    });
    assert.equal(publishedWhilePulling, false);
    // 307,200 bytes: one full paced piece once 256 groups are in, then the rest.
    assert.equal(asked.length, 2, `pieces ${asked}`);
    assert.equal(asked[0], 256 * 1024);
    assert.deepEqual(await store.get("t/0/s.kfs"), joinBytes(groups.flat(), 300 * 1_024));
  });
});

Deno.test("LocalObjectStore: a putStream whose source fails publishes nothing, leaves no temp file and rethrows the source's error", async () => {
  await withStore(async (store, root) => {
    class Broken extends Error {}
    let cleanedUp = false;
    async function* source() {
      try {
        yield [new Uint8Array(300 * 1024)];
        throw new Broken("the seal found a gap");
      } finally {
        cleanedUp = true;
      }
    }
    await assert.rejects(store.putStream("t/0/s.kfs", source(), { ifNoneMatch: true }), Broken);
    assert.equal(await store.get("t/0/s.kfs"), null);
    assert.ok(cleanedUp);
    const names = [...Deno.readDirSync(`${root}/t/0`)].map((e) => e.name);
    assert.deepEqual(names, []);
    // A failing write ends the source too (its finally runs), and the error is the store's.
    let ended = false;
    let pulled = 0;
    async function* endless() {
      try {
        for (let i = 0; i < 1_000; i++) {
          pulled++;
          yield [new Uint8Array(64 * 1024)];
        }
      } finally {
        ended = true;
      }
    }
    let pieces = 0;
    await assert.rejects(
      store.putStream("t/0/e.kfs", endless(), {
        ifNoneMatch: true,
        pace: () => ++pieces === 2 ? Promise.reject(new Error("disk gone")) : Promise.resolve(),
      }),
      ObjectStoreError,
    );
    assert.ok(ended);
    assert.ok(pulled < 20, `pulled ${pulled} groups`);
    assert.equal(await store.get("t/0/e.kfs"), null);
  });
});

Deno.test("LocalObjectStore: readRangeSync into a given buffer returns a view of it", async () => {
  await withStore(async (store) => {
    const data = new Uint8Array(100).map((_, i) => i);
    await store.put("a/one", data);
    const shared = new Uint8Array(64);
    const got = store.readRangeSync("a/one", 10, 30, shared.subarray(8, 28))!;
    assert.equal(got.buffer, shared.buffer);
    assert.deepEqual([...got], [...data.subarray(10, 30)]);
    assert.deepEqual([...shared.subarray(8, 28)], [...data.subarray(10, 30)]);
    assert.throws(() => store.readRangeSync("a/one", 0, 10, new Uint8Array(9)), /holds 9 bytes/);
  });
});

Deno.test("LocalObjectStore: a retired appendable file is reused by the next one, which overwrites it from its start", async () => {
  await withStore(async (store, root) => {
    const bytes = (n: number, from = 0) =>
      Uint8Array.from({ length: n }, (_, i) => (from + i) % 251);
    const old = await store.createAppendable("w/1.wal");
    await old.append(bytes(1000));
    await old.close();
    const taken = await store.createAppendable("w/taken.wal");
    await taken.close();
    const inode = (await Deno.stat(`${root}/w/1.wal`)).ino;
    assert.deepEqual(store.readRangeSync("w/1.wal", 0, 10), bytes(10), "a descriptor is cached");

    await store.retireAppendable("w/1.wal");
    assert.equal(await store.get("w/1.wal"), null);
    assert.equal(store.readRangeSync("w/1.wal", 0, 10), null, "the cached descriptor is dropped");
    assert.deepEqual((await store.list("w/")).map((o) => o.key), ["w/taken.wal"]);
    const spares = await Array.fromAsync(Deno.readDir(`${root}/${SPARE_FILES_DIR}`));
    assert.equal(spares.length, 1);

    // Create-only still holds with a spare at hand: an existing name is refused, the spare kept.
    await assert.rejects(() => store.createAppendable("w/taken.wal"), PreconditionFailedError);

    const next = await store.createAppendable("w/2.wal");
    assert.equal((await Deno.stat(`${root}/w/2.wal`)).ino, inode, "the same file, renamed");
    assert.equal(await next.append(bytes(100, 7)), 0, "appends start at 0");
    assert.equal(await next.append(bytes(10, 50)), 100);
    assert.equal(next.size, 110);
    await next.close();
    assert.deepEqual(store.readRangeSync("w/2.wal", 0, 110), concat(bytes(100, 7), bytes(10, 50)));
    // Past what was appended, the file still holds its old bytes: readers read only ranges
    // they were told were written.
    assert.deepEqual(store.readRangeSync("w/2.wal", 110, 120), bytes(10, 110));
    assert.deepEqual(await Array.fromAsync(Deno.readDir(`${root}/${SPARE_FILES_DIR}`)), []);

    // With no spare left, a new file is a new, empty file.
    const fresh = await store.createAppendable("w/3.wal");
    await fresh.close();
    assert.equal((await Deno.stat(`${root}/w/3.wal`)).size, 0);
  });
});

Deno.test("LocalObjectStore: preallocateBytes gives a new appendable file its zeros up front; a reused spare is not filled", async () => {
  await withStore(async (store, root) => {
    const SIZE = 3 * 1024 * 1024 + 5;
    const file = await store.createAppendable("w/1.wal", { preallocateBytes: SIZE });
    assert.equal(file.size, 0, "nothing appended yet");
    assert.equal((await Deno.stat(`${root}/w/1.wal`)).size, SIZE);
    assert.equal(await file.append(new Uint8Array(10).fill(7)), 0, "appends start at 0");
    assert.equal(file.size, 10);
    await file.close();
    const bytes = (await store.get("w/1.wal"))!;
    assert.equal(bytes.length, SIZE);
    assert.ok(bytes.subarray(0, 10).every((b) => b === 7));
    assert.ok(bytes.subarray(10).every((b) => b === 0));

    await store.retireAppendable("w/1.wal");
    const reused = await store.createAppendable("w/2.wal", { preallocateBytes: 2 * SIZE });
    await reused.close();
    assert.equal((await Deno.stat(`${root}/w/2.wal`)).size, SIZE, "the spare as it was");
  });
});

Deno.test("LocalObjectStore: at most spareFilesMax retired files are kept; the rest are deleted", async () => {
  for (const max of [0, 2]) {
    const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
    const store = new LocalObjectStore(root, { spareFilesMax: max });
    try {
      for (let i = 0; i < 4; i++) {
        const f = await store.createAppendable(`w/${i}.wal`);
        await f.append(new Uint8Array(10));
        await f.close();
      }
      // At once, as collection retires them: the bound holds for retirements in flight too.
      await Promise.all([0, 1, 2, 3].map((i) => store.retireAppendable(`w/${i}.wal`)));
      await store.retireAppendable("w/missing.wal"); // already gone: nothing to do
      assert.deepEqual(await store.list("w/"), []);
      const spares = await Array.fromAsync(Deno.readDir(`${root}/${SPARE_FILES_DIR}`)).catch(
        () => [],
      );
      assert.equal(spares.length, max, `spareFilesMax ${max}`);
    } finally {
      await store.close();
      await Deno.remove(root, { recursive: true });
    }
  }
});

Deno.test("LocalObjectStore: spares survive a restart; a spare with a second name is never reused", async () => {
  const root = await Deno.makeTempDir({ prefix: "kafscale-local-store-" });
  try {
    let store = new LocalObjectStore(root);
    for (const name of ["a", "b"]) {
      const f = await store.createAppendable(`w/${name}.wal`);
      await f.append(new TextEncoder().encode(`${name} data`));
      await f.close();
    }
    for (const name of ["a", "b"]) await store.retireAppendable(`w/${name}.wal`);
    await store.close();
    // A spare that is also another file's name (what a crash could leave if the unlink of a
    // reused spare was lost): overwriting it would overwrite that file.
    const [first] = (await Array.fromAsync(Deno.readDir(`${root}/${SPARE_FILES_DIR}`)))
      .map((e) => `${root}/${SPARE_FILES_DIR}/${e.name}`);
    await Deno.mkdir(`${root}/other`);
    await Deno.link(first, `${root}/other/live.wal`);
    const liveBytes = await Deno.readFile(first);

    store = new LocalObjectStore(root);
    const liveInode = (await Deno.stat(`${root}/other/live.wal`)).ino;
    const sizes: number[] = [];
    for (const name of ["c", "d"]) {
      const f = await store.createAppendable(`w/${name}.wal`);
      await f.close();
      const info = await Deno.stat(`${root}/w/${name}.wal`);
      assert.notEqual(info.ino, liveInode, "the doubly named spare is never taken");
      sizes.push(info.size);
    }
    assert.equal(sizes.filter((n) => n > 0).length, 1, "the other spare was reused");
    assert.deepEqual(await Deno.readFile(`${root}/other/live.wal`), liveBytes, "left untouched");
    // Both are gone from the pool: one reused, the doubly named one forgotten.
    assert.deepEqual(await Array.fromAsync(Deno.readDir(`${root}/${SPARE_FILES_DIR}`)), []);
    await store.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("LocalObjectStore: objects bigger than a read piece read back whole and by range", async () => {
  await withStore(async (store) => {
    const data = new Uint8Array(3 * READ_PIECE_BYTES + 12_345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2_654_435_761) >>> 24;
    await store.put("big", data);
    assert.deepEqual(await store.get("big"), data);
    const from = READ_PIECE_BYTES - 7;
    const to = 3 * READ_PIECE_BYTES + 99;
    assert.deepEqual(await store.getRange("big", from, to), data.subarray(from, to));
    assert.deepEqual(await store.getRange("big", to, data.length + 50), data.subarray(to));
    assert.equal(await store.get("missing"), null);
  });
});
