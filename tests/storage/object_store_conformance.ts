/**
 * One conformance suite for every `ObjectStore` backend (memory, local
 * directory, and later S3): each backend's test file calls
 * `objectStoreConformance` with a factory for fresh, empty stores.
 */

import assert from "node:assert/strict";
import {
  type ObjectStore,
  ObjectStoreError,
  PreconditionFailedError,
} from "../../lib/storage/object_store.ts";

export interface ObjectStoreFixture {
  store: ObjectStore;
  /** Closes the store and removes whatever backs it. */
  cleanup: () => Promise<void>;
}

/** Bound on objects written by the concurrency cases. */
const CONCURRENT_PUTS = 32;

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const text = (data: Uint8Array | null) => (data === null ? null : new TextDecoder().decode(data));

export function segmentKey(topic: string, partition: number, baseOffset: number, ext: string) {
  return `default/${topic}/${partition}/segment-${String(baseOffset).padStart(20, "0")}.${ext}`;
}

export function objectStoreConformance(
  name: string,
  makeStore: () => Promise<ObjectStoreFixture>,
): void {
  const test = (title: string, fn: (store: ObjectStore) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await fn(store);
      } finally {
        await cleanup();
      }
    });

  test("get of a missing key is null", async (store) => {
    assert.equal(await store.get("nope"), null);
    assert.equal(await store.get("a/b/c"), null);
  });

  test("put then get returns the bytes; overwrite replaces them", async (store) => {
    await store.put("a/b/obj", bytes("first"));
    assert.equal(text(await store.get("a/b/obj")), "first");
    await store.put("a/b/obj", bytes("second, longer"));
    assert.equal(text(await store.get("a/b/obj")), "second, longer");
    await store.put("a/b/obj", bytes("3"));
    assert.equal(text(await store.get("a/b/obj")), "3");
  });

  test("stored bytes do not alias the caller's buffers", async (store) => {
    const data = bytes("hello");
    await store.put("k", data);
    data[0] = 0x78;
    const got = (await store.get("k"))!;
    assert.equal(text(got), "hello");
    got[0] = 0x79;
    assert.equal(text(await store.get("k")), "hello");
  });

  test("empty object", async (store) => {
    await store.put("empty", new Uint8Array(0));
    const got = await store.get("empty");
    assert.notEqual(got, null);
    assert.equal(got!.length, 0);
    assert.deepEqual(await store.list("empty"), [{ key: "empty", size: 0 }]);
    assert.equal((await store.getRange("empty", 0, 10))!.length, 0);
  });

  test("putParts (where the store has it) writes the concatenation, create-only", async (store) => {
    if (!store.putParts) return;
    await store.putParts("p/obj", [bytes("head-"), bytes(""), bytes("body-"), bytes("foot")]);
    assert.equal(text(await store.get("p/obj")), "head-body-foot");
    if (store.supportsConditionalPut) {
      await assert.rejects(
        store.putParts("p/obj", [bytes("x")], { ifNoneMatch: true }),
        PreconditionFailedError,
      );
      assert.equal(text(await store.get("p/obj")), "head-body-foot");
    }
  });

  test("putStream (where the store has it) writes its groups in order, create-only, and publishes nothing when its source fails", async (store) => {
    if (!store.putStream) return;
    async function* groups(...texts: string[][]) {
      for (const group of texts) yield group.map(bytes);
    }
    await store.putStream("s/obj", groups(["head-"], [], ["bo", "dy-"], ["foot"]));
    assert.equal(text(await store.get("s/obj")), "head-body-foot");
    if (store.supportsConditionalPut) {
      await assert.rejects(
        store.putStream("s/obj", groups(["x"]), { ifNoneMatch: true }),
        PreconditionFailedError,
      );
      assert.equal(text(await store.get("s/obj")), "head-body-foot");
    }
    class SourceError extends Error {}
    async function* failing() {
      yield [bytes("part")];
      await Promise.resolve();
      throw new SourceError("no more");
    }
    await assert.rejects(store.putStream("s/failed", failing()), SourceError);
    assert.equal(await store.get("s/failed"), null);
  });

  test("appendable objects (where the store has them) grow by appends, create-only", async (store) => {
    if (!store.createAppendable) return;
    const file = await store.createAppendable("w/f.wal");
    assert.equal(await file.append(bytes("abc")), 0);
    assert.equal(await file.append(bytes("defg")), 3);
    assert.equal(file.size, 7);
    assert.equal(text(await store.getRange("w/f.wal", 2, 5)), "cde");
    assert.deepEqual(await store.list("w/"), [{ key: "w/f.wal", size: 7 }]);
    await file.close();
    await assert.rejects(store.createAppendable("w/f.wal"), PreconditionFailedError);
    assert.equal(text(await store.get("w/f.wal")), "abcdefg");
  });

  test("getRange returns a clamped slice, null when missing", async (store) => {
    await store.put("r", bytes("0123456789"));
    assert.equal(text(await store.getRange("r", 0, 10)), "0123456789");
    assert.equal(text(await store.getRange("r", 2, 5)), "234");
    assert.equal(text(await store.getRange("r", 7, 100)), "789");
    assert.equal(text(await store.getRange("r", 9, 10)), "9");
    assert.equal(text(await store.getRange("r", 10, 20)), "");
    assert.equal(text(await store.getRange("r", 50, 60)), "");
    assert.equal(text(await store.getRange("r", 5, 5)), "");
    assert.equal(text(await store.getRange("r", 6, 3)), "");
    assert.equal(await store.getRange("missing", 0, 10), null);
  });

  test("list returns keys with the prefix, sorted, with sizes", async (store) => {
    const objects: Record<string, string> = {
      "t/0/b": "bb",
      "t/0/a": "a",
      "t/1/a": "1234",
      "t/10/a": "x",
      "t-other": "yyy",
      "u/a": "zz",
      "t/0/nested/deep/x": "deep",
    };
    await Promise.all(Object.entries(objects).map(([k, v]) => store.put(k, bytes(v))));
    const all = await store.list("");
    assert.deepEqual(all.map((o) => o.key), Object.keys(objects).sort());
    for (const o of all) assert.equal(o.size, objects[o.key].length);

    assert.deepEqual(await store.list("t/0/"), [
      { key: "t/0/a", size: 1 },
      { key: "t/0/b", size: 2 },
      { key: "t/0/nested/deep/x", size: 4 },
    ]);
    // A prefix may end in part of a name, of a file or of a directory.
    assert.deepEqual((await store.list("t/1")).map((o) => o.key), ["t/1/a", "t/10/a"]);
    assert.deepEqual((await store.list("t")).map((o) => o.key), [
      "t-other",
      "t/0/a",
      "t/0/b",
      "t/0/nested/deep/x",
      "t/1/a",
      "t/10/a",
    ]);
    assert.deepEqual((await store.list("t/0/ne")).map((o) => o.key), ["t/0/nested/deep/x"]);
    assert.deepEqual((await store.list("t/0/a")).map((o) => o.key), ["t/0/a"]);
    assert.deepEqual(await store.list("t/2/"), []);
    assert.deepEqual(await store.list("nothing"), []);
    assert.deepEqual(await store.list("nothing/at/all/"), []);
  });

  test("list reflects overwrites and deletes", async (store) => {
    await store.put("d/x", bytes("12345"));
    await store.put("d/y", bytes("1"));
    await store.put("d/x", bytes("12"));
    assert.deepEqual(await store.list("d/"), [{ key: "d/x", size: 2 }, { key: "d/y", size: 1 }]);
    await store.delete("d/y");
    assert.deepEqual(await store.list("d/"), [{ key: "d/x", size: 2 }]);
  });

  test("delete removes the object and is idempotent", async (store) => {
    await store.put("del/me", bytes("x"));
    await store.delete("del/me");
    assert.equal(await store.get("del/me"), null);
    assert.equal(await store.getRange("del/me", 0, 1), null);
    await store.delete("del/me");
    await store.delete("never/existed");
    await store.put("del/me", bytes("again"));
    assert.equal(text(await store.get("del/me")), "again");
  });

  test("ifNoneMatch creates once, then fails with PreconditionFailedError", async (store) => {
    if (!store.supportsConditionalPut) {
      // Such a backend writes unconditionally.
      await store.put("c/k", bytes("one"), { ifNoneMatch: true });
      await store.put("c/k", bytes("two"), { ifNoneMatch: true });
      assert.equal(text(await store.get("c/k")), "two");
      return;
    }
    await store.put("c/k", bytes("one"), { ifNoneMatch: true });
    const error = await store.put("c/k", bytes("two"), { ifNoneMatch: true }).then(
      () => null,
      (e) => e,
    );
    assert.ok(error instanceof PreconditionFailedError, `got ${error}`);
    assert.ok(error instanceof ObjectStoreError);
    assert.equal(error.key, "c/k");
    assert.equal(text(await store.get("c/k")), "one");
    assert.deepEqual(await store.list("c/"), [{ key: "c/k", size: 3 }]);
    // An unconditional put still overwrites; after a delete, create works again.
    await store.put("c/k", bytes("three"));
    assert.equal(text(await store.get("c/k")), "three");
    await store.delete("c/k");
    await store.put("c/k", bytes("four"), { ifNoneMatch: true });
    assert.equal(text(await store.get("c/k")), "four");
  });

  test("concurrent ifNoneMatch puts of one key: exactly one wins", async (store) => {
    if (!store.supportsConditionalPut) return;
    const results = await Promise.allSettled(
      Array.from(
        { length: 8 },
        (_, i) => store.put("race/k", bytes(`writer-${i}`), { ifNoneMatch: true }),
      ),
    );
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(winners.length, 1);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof PreconditionFailedError);
    }
    assert.equal(text(await store.get("race/k")), `writer-${winners[0]}`);
  });

  test("binary data integrity: random 1 MiB", async (store) => {
    const data = new Uint8Array(1024 * 1024);
    for (let i = 0; i < data.length; i += 65536) {
      crypto.getRandomValues(data.subarray(i, i + 65536));
    }
    await store.put("bin/blob", data);
    assert.deepEqual(await store.get("bin/blob"), data);
    assert.deepEqual(await store.getRange("bin/blob", 12345, 654321), data.slice(12345, 654321));
    assert.deepEqual(
      await store.getRange("bin/blob", data.length - 7, data.length + 100),
      data.slice(data.length - 7),
    );
    assert.deepEqual(await store.list("bin/"), [{ key: "bin/blob", size: data.length }]);
  });

  test("concurrent puts to distinct keys all land", async (store) => {
    const keys = Array.from({ length: CONCURRENT_PUTS }, (_, i) => `p/${i % 4}/obj-${i}`);
    await Promise.all(keys.map((key) => store.put(key, bytes(key))));
    const listed = await store.list("p/");
    assert.deepEqual(listed.map((o) => o.key), [...keys].sort());
    for (const key of keys) assert.equal(text(await store.get(key)), key);
  });

  test("concurrent overwrites of one key leave one complete value", async (store) => {
    const values = Array.from({ length: 8 }, (_, i) => bytes(`value-${i}-`.repeat(100 + i)));
    await Promise.all(values.map((v) => store.put("ow/k", v)));
    const got = await store.get("ow/k");
    assert.ok(values.some((v) => text(v) === text(got)), "a value that was written");
  });

  test("segment-style keys list in offset order", async (store) => {
    const offsets = [1_000_000, 0, 42, 9_999_999_999];
    for (const offset of offsets) {
      await store.put(segmentKey("orders", 0, offset, "kfs"), bytes(`seg ${offset}`));
      await store.put(segmentKey("orders", 0, offset, "index"), bytes(`idx ${offset}`));
    }
    await store.put(segmentKey("orders", 1, 0, "kfs"), bytes("other partition"));
    await store.put(segmentKey("orders-2", 0, 0, "kfs"), bytes("other topic"));
    const listed = await store.list("default/orders/0/segment-");
    const sorted = [...offsets].sort((a, b) => a - b);
    assert.deepEqual(
      listed.map((o) => o.key),
      sorted.flatMap((
        o,
      ) => [segmentKey("orders", 0, o, "index"), segmentKey("orders", 0, o, "kfs")]),
    );
    assert.deepEqual(
      (await store.list("default/orders/")).map((o) => o.key).filter((k) => k.endsWith(".kfs")),
      [...sorted.map((o) => segmentKey("orders", 0, o, "kfs")), segmentKey("orders", 1, 0, "kfs")],
    );
    assert.equal(text(await store.get(segmentKey("orders", 0, 42, "kfs"))), "seg 42");
  });
}
