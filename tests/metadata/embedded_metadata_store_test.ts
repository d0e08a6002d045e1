import assert from "node:assert/strict";
import { EmbeddedMetadataStore } from "../../lib/metadata/embedded_metadata_store.ts";
import { LeaseExpiredError, MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { ConsoleLogger, silentLogger } from "../../lib/util/logger.ts";
import { metadataStoreConformance } from "./metadata_store_conformance.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data);

metadataStoreConformance("EmbeddedMetadataStore", async (clock) => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-meta-" });
  const store = await EmbeddedMetadataStore.open(dir, { clock });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

// Small enough that the conformance cases compact many times.
metadataStoreConformance("EmbeddedMetadataStore compacting constantly", async (clock) => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-meta-" });
  const store = await EmbeddedMetadataStore.open(dir, {
    clock,
    compactLogBytes: 1,
    compactStateRatio: 0,
  });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-meta-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: new ConsoleLogger("debug", {}, (line) => lines.push(line)) };
}

/** Writes a known history and returns what a reopened store must show. */
async function writeHistory(store: EmbeddedMetadataStore) {
  await store.put("topics/a", bytes("a1"));
  await store.put("topics/b", bytes("b1"));
  await store.put("topics/a", bytes("a2"));
  await store.delete("topics/b");
  await store.txn([{ key: "topics/a", target: "version", equals: 2 }], [
    { op: "put", key: "offsets/g/0", value: bytes("42") },
    { op: "put", key: "offsets/g/1", value: bytes("43") },
  ]);
  await store.deletePrefix("offsets/g/1");
  const revision = await store.put("binary", new Uint8Array([0, 255, 10, 13, 0]));
  return { revision, entries: await store.list("") };
}

Deno.test("EmbeddedMetadataStore: restart keeps data, entry metadata and the revision", async () => {
  await withDir(async (dir) => {
    const first = await EmbeddedMetadataStore.open(dir);
    const { revision, entries } = await writeHistory(first);
    await first.close();

    const second = await EmbeddedMetadataStore.open(dir);
    try {
      assert.deepEqual(await second.list(""), entries);
      assert.equal(await second.put("next", bytes("x")), revision + 1);
    } finally {
      await second.close();
    }
    const third = await EmbeddedMetadataStore.open(dir);
    try {
      assert.equal(text((await third.get("next"))?.value), "x");
      assert.equal(await third.put("next", bytes("y")), revision + 2);
    } finally {
      await third.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: a torn tail record is truncated and logged", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir);
    await store.put("k1", bytes("one"));
    await store.put("k2", bytes("two"));
    await store.put("k3", bytes("three"));
    await store.close();
    const full = (await Deno.stat(`${dir}/wal`)).size;
    await Deno.truncate(`${dir}/wal`, full - 3); // the last record lost its end

    const { lines, logger } = capturingLogger();
    const reopened = await EmbeddedMetadataStore.open(dir, { logger });
    try {
      assert.equal(text((await reopened.get("k2"))?.value), "two");
      assert.equal(await reopened.get("k3"), null);
      assert.ok(
        lines.some((l) => l.includes("WARN") && l.includes("Truncating")),
        lines.join("\n"),
      );
      const valid = (await Deno.stat(`${dir}/wal`)).size;
      assert.ok(valid < full - 3, "the partial record was cut off");
      assert.equal(await reopened.put("k3", bytes("again")), 3, "revision 3 is reused");
    } finally {
      await reopened.close();
    }
    const again = await EmbeddedMetadataStore.open(dir, { logger });
    try {
      assert.equal(text((await again.get("k3"))?.value), "again");
    } finally {
      await again.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: a corrupt tail record and trailing garbage are truncated", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir);
    await store.put("k1", bytes("one"));
    await store.put("k2", bytes("two"));
    await store.close();
    const wal = await Deno.readFile(`${dir}/wal`);
    wal[wal.length - 2] ^= 0xff; // flip a bit in k2's value
    await Deno.writeFile(`${dir}/wal`, wal);

    const reopened = await EmbeddedMetadataStore.open(dir);
    try {
      assert.equal(text((await reopened.get("k1"))?.value), "one");
      assert.equal(await reopened.get("k2"), null);
      await reopened.put("k2", bytes("fixed"));
    } finally {
      await reopened.close();
    }
    const file = await Deno.open(`${dir}/wal`, { append: true });
    await file.write(new Uint8Array([0, 0, 0, 9, 1, 2])); // a header promising more
    file.close();
    const third = await EmbeddedMetadataStore.open(dir);
    try {
      assert.equal(text((await third.get("k2"))?.value), "fixed");
      assert.equal(third.stats.logBytes, (await Deno.stat(`${dir}/wal`)).size);
    } finally {
      await third.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: compaction writes a snapshot; restart = snapshot + log", async () => {
  await withDir(async (dir) => {
    const options = { compactLogBytes: 4096, compactStateRatio: 0 };
    const store = await EmbeddedMetadataStore.open(dir, options);
    let revision = 0;
    for (let i = 0; i < 300; i++) {
      revision = await store.put(`offsets/${i % 10}`, bytes(`value-${i}`.padEnd(64, ".")));
    }
    await store.delete("offsets/9");
    assert.ok(store.stats.compactions >= 5, JSON.stringify(store.stats));
    assert.ok(store.stats.logBytes < 4096 + 200, JSON.stringify(store.stats));
    assert.equal((await Deno.stat(`${dir}/wal`)).size, store.stats.logBytes);
    const entries = await store.list("");
    await store.close();
    assert.ok((await Deno.stat(`${dir}/snapshot`)).size > 0);

    const reopened = await EmbeddedMetadataStore.open(dir, options);
    try {
      assert.deepEqual(await reopened.list(""), entries);
      assert.equal(await reopened.put("next", bytes("n")), revision + 2);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: records already in the snapshot are skipped on replay", async () => {
  await withDir(async (dir) => {
    // Simulates a crash after the snapshot was renamed but before the log was reset.
    const store = await EmbeddedMetadataStore.open(dir);
    await store.put("a", bytes("1"));
    await store.put("a", bytes("2"));
    await store.close();
    const oldLog = await Deno.readFile(`${dir}/wal`);
    const compacting = await EmbeddedMetadataStore.open(dir, {
      compactLogBytes: 1,
      compactStateRatio: 0,
    });
    await compacting.put("b", bytes("3")); // triggers a snapshot at revision 3
    await compacting.close();
    await Deno.writeFile(`${dir}/wal`, oldLog);

    const reopened = await EmbeddedMetadataStore.open(dir);
    try {
      const a = (await reopened.get("a"))!;
      assert.deepEqual([text(a.value), a.version, a.modRevision], ["2", 2, 2]);
      assert.equal(text((await reopened.get("b"))?.value), "3");
      assert.equal(await reopened.put("c", bytes("4")), 4);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: a corrupt snapshot fails the open loudly", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir, {
      compactLogBytes: 1,
      compactStateRatio: 0,
    });
    await store.put("a", bytes("1"));
    await store.close();
    const snapshot = await Deno.readFile(`${dir}/snapshot`);
    snapshot[snapshot.length - 6] ^= 1;
    await Deno.writeFile(`${dir}/snapshot`, snapshot);
    await assert.rejects(
      () => EmbeddedMetadataStore.open(dir),
      (e: unknown) => e instanceof MetadataStoreError && /snapshot .* is corrupt/.test(e.message),
    );
    // The failed open released the lock.
    await Deno.remove(`${dir}/snapshot`);
    await (await EmbeddedMetadataStore.open(dir)).close();
  });
});

Deno.test("EmbeddedMetadataStore: a second open of the same directory fails clearly", async () => {
  await withDir(async (dir) => {
    const first = await EmbeddedMetadataStore.open(dir);
    await first.put("k", bytes("v"));
    const error = await EmbeddedMetadataStore.open(dir).then(() => null, (e) => e);
    assert.ok(error instanceof MetadataStoreError, String(error));
    assert.equal(
      error.message,
      `Cannot open metadata store: "${dir}" is in use by another process; ` +
        `stop that process or choose another data directory`,
    );
    await first.close();
    const second = await EmbeddedMetadataStore.open(dir);
    assert.equal(text((await second.get("k"))?.value), "v");
    await second.close();
  });
});

Deno.test("EmbeddedMetadataStore: leases of the previous run are expired on open", async () => {
  await withDir(async (dir) => {
    const clock = new ManualClock();
    const first = await EmbeddedMetadataStore.open(dir, { clock });
    const lease = await first.grantLease(60_000);
    await first.put("brokers/1", bytes("alive"), { lease: lease.id });
    await first.put("partitions/0/owner", bytes("1"), { lease: lease.id });
    const revision = await first.put("topics/a", bytes("durable"));
    await first.close();
    assert.equal(clock.pendingTimers(), 0, "close cleared the lease timer");

    const second = await EmbeddedMetadataStore.open(dir, { clock });
    try {
      assert.deepEqual((await second.list("")).map((e) => e.key), ["topics/a"]);
      await assert.rejects(() => second.keepAlive(lease.id), LeaseExpiredError);
      const fresh = await second.grantLease(1_000);
      assert.ok(fresh.id > lease.id, "lease ids are not reused");
      // One write deleted both keys.
      assert.equal(await second.put("x", bytes("x")), revision + 2);
    } finally {
      await second.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: 200 concurrent puts share fsyncs", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir);
    try {
      const before = store.stats.logFsyncs;
      const revisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.put(`offsets/p${i}`, bytes(String(i)))),
      );
      const fsyncs = store.stats.logFsyncs - before;
      assert.ok(fsyncs >= 1 && fsyncs < 20, `${fsyncs} fsyncs for 200 puts`);
      assert.deepEqual(revisions, [...revisions].sort((a, b) => a - b));
      assert.equal(store.stats.records, 200);
      // Writes that arrive while an fsync is in flight join the next one.
      const waves = [];
      for (let wave = 0; wave < 5; wave++) {
        waves.push(
          ...Array.from({ length: 40 }, (_, i) => store.put(`w/${wave}/${i}`, bytes("x"))),
        );
        await Promise.resolve();
      }
      await Promise.all(waves);
      assert.ok(store.stats.logFsyncs - before - fsyncs < 20, JSON.stringify(store.stats));
    } finally {
      await store.close();
    }
    const reopened = await EmbeddedMetadataStore.open(dir);
    try {
      assert.equal((await reopened.list("offsets/")).length, 200);
      assert.equal((await reopened.list("w/")).length, 200);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: reads wait until what they return is durable", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir);
    try {
      const fsyncsBefore = store.stats.logFsyncs;
      const write = store.put("k", bytes("v"));
      const read = await store.get("k");
      assert.equal(text(read?.value), "v");
      assert.equal(store.stats.logFsyncs, fsyncsBefore + 1, "the read waited for the fsync");
      await write;
    } finally {
      await store.close();
    }
  });
});

Deno.test("EmbeddedMetadataStore: close waits for accepted writes to become durable", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir, { logger: silentLogger });
    const writes = Array.from({ length: 20 }, (_, i) => store.put(`k${i}`, bytes("v")));
    await store.close();
    await Promise.all(writes);
    await assert.rejects(() => store.put("late", bytes("v")), MetadataStoreError);
    const reopened = await EmbeddedMetadataStore.open(dir);
    assert.equal((await reopened.list("k")).length, 20);
    await reopened.close();
  });
});

Deno.test("EmbeddedMetadataStore: a failed log write fails the write and poisons the store", async () => {
  await withDir(async (dir) => {
    const { lines, logger } = capturingLogger();
    let diskBroken = false;
    const store = await EmbeddedMetadataStore.open(dir, {
      logger,
      beforeLogWrite: () =>
        diskBroken ? Promise.reject(new Error("No space left on device")) : Promise.resolve(),
    });
    await store.put("ok", bytes("1"));
    const seen: string[] = [];
    store.watch("", (e) => seen.push(e.type));
    diskBroken = true;
    const results = await Promise.allSettled([
      store.put("bad1", bytes("2")),
      store.txn([], [{ op: "delete", key: "ok" }]),
    ]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.ok(r.reason instanceof MetadataStoreError);
      assert.match(r.reason.message, /No space left on device/);
    }
    assert.deepEqual(seen, [], "no events for writes that failed");
    diskBroken = false;
    await assert.rejects(() => store.get("ok"), /No space left on device/);
    await assert.rejects(() => store.put("later", bytes("3")), MetadataStoreError);
    assert.ok(lines.some((l) => l.includes("ERROR") && l.includes("reopen")), lines.join("\n"));
    await store.close();

    const reopened = await EmbeddedMetadataStore.open(dir);
    try {
      assert.deepEqual((await reopened.list("")).map((e) => e.key), ["ok"]);
    } finally {
      await reopened.close();
    }
  });
});
