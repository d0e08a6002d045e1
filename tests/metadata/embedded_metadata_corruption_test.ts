/**
 * Damage at rest in the embedded metadata store's log (issue 17, finding 1):
 * a torn tail is truncated; damage with valid records after it refuses to
 * open, naming the file and the byte offset, because truncating there would
 * drop acknowledged writes; `kafscale metadata repair` rebuilds the rest and
 * keeps the damaged log as a backup. Every byte position of a small log is
 * tried, for truncations and for bit flips.
 */
import assert from "node:assert/strict";
import {
  EmbeddedMetadataStore,
  MetadataLogCorruptError,
  repairEmbeddedMetadataStore,
} from "../../lib/metadata/embedded_metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { runMetadata } from "../../lib/cli/metadata.ts";

const encoder = new TextEncoder();
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data);
const RECORDS = 5;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-meta-corrupt-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes k0..k4 (one log record each) and returns the log and its record starts. */
async function writeLog(dir: string): Promise<{ wal: Uint8Array; starts: number[] }> {
  const store = await EmbeddedMetadataStore.open(dir);
  for (let i = 0; i < RECORDS; i++) {
    await store.put(`k${i}`, encoder.encode(`value-${i}`));
  }
  await store.close();
  const wal = await Deno.readFile(`${dir}/wal`);
  const view = new DataView(wal.buffer);
  const starts: number[] = [];
  for (let o = 0; o < wal.length; o += 8 + view.getUint32(o)) starts.push(o);
  assert.equal(starts.length, RECORDS);
  return { wal, starts };
}

/** The keys a reopened store shows, and the log size it left behind. */
async function reopen(dir: string): Promise<{ keys: string[]; walBytes: number }> {
  const store = await EmbeddedMetadataStore.open(dir);
  try {
    const keys = (await store.list("k")).map((e) => e.key);
    return { keys, walBytes: (await Deno.stat(`${dir}/wal`)).size };
  } finally {
    await store.close();
  }
}

const firstKeys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);

Deno.test("Metadata log: a truncation at every byte keeps every whole record and cuts the rest", async () => {
  await withDir(async (dir) => {
    const { wal, starts } = await writeLog(dir);
    const ends = [...starts.slice(1), wal.length];
    for (let cut = 0; cut <= wal.length; cut++) {
      await Deno.writeFile(`${dir}/wal`, wal.subarray(0, cut));
      const whole = ends.filter((end) => end <= cut).length;
      const { keys, walBytes } = await reopen(dir);
      assert.deepEqual(keys, firstKeys(whole), `cut at ${cut}`);
      assert.equal(walBytes, whole === 0 ? 0 : ends[whole - 1], `cut at ${cut}: log size`);
    }
  });
});

Deno.test("Metadata log: a bit flip anywhere in the last record is a torn tail", async () => {
  await withDir(async (dir) => {
    const { wal, starts } = await writeLog(dir);
    const last = starts[RECORDS - 1];
    for (let pos = last; pos < wal.length; pos++) {
      const damaged = wal.slice();
      damaged[pos] ^= 1 << (pos % 8);
      await Deno.writeFile(`${dir}/wal`, damaged);
      const { keys, walBytes } = await reopen(dir);
      assert.deepEqual(keys, firstKeys(RECORDS - 1), `flip at ${pos}`);
      assert.equal(walBytes, last, `flip at ${pos}: log size`);
    }
  });
});

Deno.test("Metadata log: a bit flip anywhere before the last record refuses to open, naming file and offset", async () => {
  await withDir(async (dir) => {
    const { wal, starts } = await writeLog(dir);
    for (let pos = 0; pos < starts[RECORDS - 1]; pos++) {
      const damaged = wal.slice();
      damaged[pos] ^= 1 << (pos % 8);
      await Deno.writeFile(`${dir}/wal`, damaged);
      const recordStart = starts.findLast((s) => s <= pos)!;
      const error = await EmbeddedMetadataStore.open(dir).then(
        async (store) => {
          await store.close();
          return null;
        },
        (e: unknown) => e,
      );
      assert.ok(error instanceof MetadataLogCorruptError, `flip at ${pos}: ${error}`);
      assert.equal(error.offset, recordStart, `flip at ${pos}`);
      assert.equal(error.file, `${dir}/wal`);
      assert.ok(error.nextValidOffset > recordStart);
      assert.match(error.message, new RegExp(`"${dir}/wal" is corrupt at byte ${recordStart} `));
      assert.match(error.message, /kafscale metadata repair --data-dir/);
      assert.deepEqual(await Deno.readFile(`${dir}/wal`), damaged, "nothing was truncated");
    }
  });
});

Deno.test("Metadata log: a zero-filled or garbage tail after the last write is truncated", async () => {
  await withDir(async (dir) => {
    const { wal } = await writeLog(dir);
    // A crash after the file grew but before its blocks were written reads as zeros.
    const zeros = new Uint8Array(wal.length + 4096);
    zeros.set(wal);
    await Deno.writeFile(`${dir}/wal`, zeros);
    assert.deepEqual(await reopen(dir), { keys: firstKeys(RECORDS), walBytes: wal.length });

    let seed = 17;
    const garbage = new Uint8Array(wal.length + 2048);
    garbage.set(wal);
    for (let i = wal.length; i < garbage.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      garbage[i] = seed >>> 24;
    }
    await Deno.writeFile(`${dir}/wal`, garbage);
    assert.deepEqual(await reopen(dir), { keys: firstKeys(RECORDS), walBytes: wal.length });
  });
});

Deno.test("Metadata repair: rebuilds around mid-log damage, keeps a backup, and the store opens", async () => {
  await withDir(async (dir) => {
    const { wal, starts } = await writeLog(dir);
    const damaged = wal.slice();
    const valueByte = starts[3] - 2; // inside k2's value
    damaged[valueByte] ^= 0x10;
    await Deno.writeFile(`${dir}/wal`, damaged);
    await assert.rejects(EmbeddedMetadataStore.open(dir), MetadataLogCorruptError);

    const dry = await repairEmbeddedMetadataStore(dir, { dryRun: true });
    assert.equal(dry.repaired, false);
    assert.deepEqual(await Deno.readFile(`${dir}/wal`), damaged, "a dry run changes nothing");

    const report = await repairEmbeddedMetadataStore(dir, {
      now: new Date("2026-01-02T03:04:05.678Z"),
    });
    assert.equal(report.repaired, true);
    assert.equal(report.damaged.length, 1);
    assert.equal(report.damaged[0].offset, starts[2]);
    assert.equal(report.damaged[0].bytes, starts[3] - starts[2]);
    assert.equal(report.damaged[0].tornTail, false);
    assert.deepEqual(report.damaged[0].possibleKeys, ["k2"]);
    assert.deepEqual(report.missingRevisions, [[3, 3]]);
    assert.equal(report.recordsReplayed, RECORDS - 1);
    const backup = `${dir}/wal.corrupt-2026-01-02T03-04-05-678Z`;
    assert.deepEqual(report.backups, [backup]);
    assert.deepEqual(await Deno.readFile(backup), damaged, "the damaged log is kept as it was");

    const store = await EmbeddedMetadataStore.open(dir);
    try {
      assert.deepEqual((await store.list("k")).map((e) => e.key), ["k0", "k1", "k3", "k4"]);
      assert.equal(text((await store.get("k4"))?.value), "value-4");
      assert.equal(await store.put("k5", encoder.encode("v")), RECORDS + 1, "revisions go on");
    } finally {
      await store.close();
    }
    const again = await repairEmbeddedMetadataStore(dir);
    assert.equal(again.repaired, false, "a clean store needs no repair");
    assert.deepEqual(again.damaged, []);
  });
});

Deno.test("Metadata repair: a snapshot plus a damaged log; the snapshot is backed up too", async () => {
  await withDir(async (dir) => {
    const options = { compactLogBytes: 1, compactStateRatio: 0 };
    const first = await EmbeddedMetadataStore.open(dir, options);
    await first.put("snap", encoder.encode("in the snapshot"));
    await first.close();
    assert.equal((await Deno.stat(`${dir}/wal`)).size, 0, "compacted into the snapshot");
    const { wal, starts } = await writeLog(dir); // reopened without compaction: 5 records
    const damaged = wal.slice();
    damaged[starts[1] + 4] ^= 0xff; // k1's checksum
    await Deno.writeFile(`${dir}/wal`, damaged);
    await assert.rejects(EmbeddedMetadataStore.open(dir), MetadataLogCorruptError);

    const report = await repairEmbeddedMetadataStore(dir);
    assert.equal(report.backups.length, 2);
    assert.ok(report.backups[1].includes("snapshot.before-repair-"));
    const { keys } = await reopen(dir);
    assert.deepEqual(keys, ["k0", "k2", "k3", "k4"]);
    const store = await EmbeddedMetadataStore.open(dir);
    try {
      assert.equal(text((await store.get("snap"))?.value), "in the snapshot");
    } finally {
      await store.close();
    }
  });
});

Deno.test("Metadata repair: refuses while the store is open", async () => {
  await withDir(async (dir) => {
    const store = await EmbeddedMetadataStore.open(dir);
    try {
      await assert.rejects(
        repairEmbeddedMetadataStore(dir),
        (e: unknown) =>
          e instanceof MetadataStoreError && /in use by another process/.test(e.message),
      );
    } finally {
      await store.close();
    }
  });
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) },
  };
}

Deno.test("kafscale metadata: check, repair and --help at every level", async () => {
  await withDir(async (dataDir) => {
    const dir = `${dataDir}/.metadata`;
    await Deno.mkdir(dir);
    const { wal, starts } = await writeLog(dir);
    const damaged = wal.slice();
    damaged[starts[0] + 10] ^= 0x01;
    await Deno.writeFile(`${dir}/wal`, damaged);

    for (const args of [["--help"], ["check", "--help"], ["repair", "-h"]]) {
      const c = capture();
      assert.equal(await runMetadata(args, c.io), 0, args.join(" "));
      assert.match(c.out.join("\n"), /^Usage: kafscale metadata/);
    }
    const bad = capture();
    assert.equal(await runMetadata(["check", "--nope"], bad.io), 2);
    assert.equal(bad.err.length, 1);

    const checked = capture();
    assert.equal(await runMetadata(["check", "--data-dir", dataDir], checked.io), 1);
    assert.match(
      checked.out.join("\n"),
      new RegExp(`damaged: bytes ${starts[0]}\\.\\.${starts[1]}`),
    );

    const repaired = capture();
    assert.equal(await runMetadata(["repair", "--data-dir", dataDir], repaired.io), 0);
    assert.match(
      repaired.out.join("\n"),
      /repaired;.*\n[\s\S]*lost revisions: 1\n[\s\S]*backup kept: /,
    );

    const clean = capture();
    assert.equal(
      await runMetadata(["check", "--data-dir", dataDir, "--output", "json"], clean.io),
      0,
    );
    assert.deepEqual(JSON.parse(clean.out.join("")).damaged, []);

    const missing = capture();
    assert.equal(await runMetadata(["check", "--data-dir", `${dataDir}/none`], missing.io), 1);
    assert.match(missing.err[0], /^Cannot repair metadata store: cannot read/);
  });
});
