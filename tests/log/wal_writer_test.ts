import assert from "node:assert/strict";
import { PREPARE_AHEAD_MS, PREPARED_FILE_AGE_MAX_MS, WalWriter } from "../../lib/log/wal_writer.ts";
import { WAL_CHUNK_FIXED_BYTES } from "../../lib/log/wal_format.ts";
import { FaultyObjectStore } from "../../lib/storage/faulty_object_store.ts";
import { LocalObjectStore, SPARE_FILES_DIR } from "../../lib/storage/local_object_store.ts";
import type { ObjectStore } from "../../lib/storage/object_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";

const FILE_BYTES = 4096;
const TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA";

/** One round whose encoded size is exactly `bytes`. */
function round(bytes: number, tag: number) {
  const payload = new Uint8Array(bytes - WAL_CHUNK_FIXED_BYTES - 1).fill(tag);
  return [{
    topic: "t",
    topicId: TOPIC_ID,
    partition: 0,
    epoch: 1,
    baseOffset: tag,
    endOffset: tag + 1,
    batches: [payload],
  }];
}

async function setup(
  wrap: (store: LocalObjectStore) => ObjectStore = (s) => s,
  fileBytesMax = FILE_BYTES,
) {
  const dir = await Deno.makeTempDir({ prefix: "wal_writer_" });
  const local = new LocalObjectStore(dir);
  const store = wrap(local);
  const clock = new ManualClock();
  const writer = new WalWriter({
    objectStore: store,
    namespace: "default",
    brokerId: 1,
    clock,
    fileBytesMax,
  });
  const files = async () => (await local.list("default/~wal/")).map((o) => o.key);
  const spares = async () =>
    (await Array.fromAsync(Deno.readDir(`${dir}/${SPARE_FILES_DIR}`)).catch(() => [])).length;
  /** A first round that fills its file; returns that file and the one made ready after it. */
  const fillFirst = async () => {
    const first = (await writer.write(round(fileBytesMax, 1))).object;
    await writer.whenNextReady();
    const others = (await files()).filter((k) => k !== first);
    assert.equal(others.length, 1, "one file made ready");
    return { first, ready: others[0] };
  };
  return {
    dir,
    local,
    store,
    clock,
    writer,
    files,
    spares,
    fillFirst,
    async close() {
      await writer.close();
      await local.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("wal writer: the next file is made ready, filled with zeros, once the current one fills fast; the round that needs a new file appends to it from its start", async () => {
  const t = await setup();
  try {
    const first = await t.writer.write(round(100, 1));
    await t.writer.whenNextReady();
    const files = await t.files();
    assert.equal(files.length, 2, "the next file is made ready");
    const ready = files.find((k) => k !== first.object)!;
    assert.ok(t.writer.holds(first.object) && t.writer.holds(ready), "both held from collection");
    assert.equal(t.writer.stats.objectsCreated, 2);
    const sizes = new Map((await t.local.list("default/~wal/")).map((o) => [o.key, o.size]));
    assert.equal(sizes.get(ready), FILE_BYTES, "its blocks are there before any round");
    assert.ok((await t.local.get(ready))!.every((b) => b === 0));

    // Files rotate at the start of the round after the one that filled them.
    assert.equal((await t.writer.write(round(FILE_BYTES, 2))).object, first.object);
    const third = await t.writer.write(round(300, 3));
    assert.equal(third.object, ready, "the full file's successor is the file made ready");
    assert.equal(third.createdObject, true);
    assert.equal(third.chunks[0].position, 0);
    assert.equal(t.writer.holds(first.object), false, "the full file is no longer held");
    const bytes = (await t.local.get(ready))!;
    assert.equal(bytes.length, FILE_BYTES, "the round overwrote the zeros");
    assert.ok(bytes.subarray(0, 300).some((b) => b === 3), "the round is at the start");
    assert.ok(bytes.subarray(300).every((b) => b === 0));
  } finally {
    await t.close();
  }
});

Deno.test("wal writer: a file made ready too long ago is given back, and the round creates a fresh one", async () => {
  const t = await setup();
  try {
    const { first, ready: stale } = await t.fillFirst();
    t.clock.advance(PREPARED_FILE_AGE_MAX_MS + 1);
    const second = await t.writer.write(round(100, 2));
    assert.notEqual(second.object, stale);
    assert.notEqual(second.object, first);
    assert.equal(t.writer.holds(stale), false);
    await t.writer.whenNextReady();
    assert.equal((await t.files()).includes(stale), false, "the stale one is gone");
  } finally {
    await t.close();
  }
});

Deno.test("wal writer: close gives back the file made ready", async () => {
  const t = await setup();
  try {
    const { first } = await t.fillFirst();
    await t.writer.close();
    assert.deepEqual(await t.files(), [first]);
    assert.equal(await t.spares(), 1);
    // A write after close starts a new file, as at every start.
    const again = await t.writer.write(round(100, 2));
    assert.notEqual(again.object, first);
  } finally {
    await t.close();
  }
});

Deno.test("wal writer: when making the next file ready fails, the round that needs one creates it", async () => {
  let faulty: FaultyObjectStore | undefined;
  const t = await setup((s) => (faulty = new FaultyObjectStore(s)));
  try {
    const { first, ready } = await t.fillFirst();
    // The next creation (a put) is the preparation the next round starts in the background.
    faulty!.failNext("put", "before");
    assert.equal((await t.writer.write(round(100, 2))).object, ready);
    await t.writer.whenNextReady();
    assert.deepEqual(await t.files(), [first, ready].sort(), "the preparation failed");
    assert.equal(t.writer.stats.objectsCreated, 2);
    await t.writer.write(round(FILE_BYTES, 3));
    const fourth = await t.writer.write(round(100, 4));
    assert.ok(![first, ready].includes(fourth.object));
    assert.equal(fourth.createdObject, true, "created inside the round");
  } finally {
    await t.close();
  }
});

Deno.test("wal writer: a slowly filling file gets its successor only once it should fill within a minute", async () => {
  const FILE = 10_000_000;
  const t = await setup(undefined, FILE);
  try {
    const first = await t.writer.write(round(100, 1));
    for (let i = 0; i < 5; i++) {
      t.clock.advance(1_000);
      await t.writer.write(round(100, 2));
      await t.writer.whenNextReady();
    }
    assert.deepEqual(await t.files(), [first.object], "100 bytes a second: hours to fill");
    // Half the file in the next round: the rest should come within the minute.
    await t.writer.write(round(FILE / 2, 3));
    await t.writer.whenNextReady();
    assert.equal((await t.files()).length, 2);
    assert.ok(PREPARE_AHEAD_MS < PREPARED_FILE_AGE_MAX_MS, "a file made ready is used in time");
  } finally {
    await t.close();
  }
});
