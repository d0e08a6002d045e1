/**
 * A data directory written before the write-ahead stream existed (one segment object per
 * partition per flush; tests/fixtures/legacy_data_dir/README.md) still works: today's broker
 * starts on a copy, serves every record at its offset (read with kcat), continues the offsets
 * through the write-ahead stream, and after a clean stop (which seals) and a restart the old
 * and the new segments read back together.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { REPO_ROOT } from "./client_runner.ts";

const FIXTURE = `${REPO_ROOT}tests/fixtures/legacy_data_dir/`;

async function kcat(args: string[], input?: string): Promise<string> {
  const child = new Deno.Command("kcat", {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `kcat ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return stdout;
}

async function readAll(bootstrap: string): Promise<string[]> {
  const out = await kcat(["-C", "-b", bootstrap, "-t", "legacy", "-e", "-f", "%p %o %k %s\\n"]);
  return out.split("\n").filter((l) => l !== "").sort();
}

Deno.test("legacy data directory: read, continued and sealed by today's broker", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kafscale-legacy-" });
  try {
    const copy = await new Deno.Command("cp", { args: ["-a", `${FIXTURE}store/.`, dataDir] })
      .output();
    assert.equal(copy.code, 0);
    const expected = (await Deno.readTextFile(`${FIXTURE}expected.txt`))
      .split("\n").filter((l) => l !== "").sort();
    assert.equal(expected.length, 62);

    let broker = await startBroker({ dataDir });
    try {
      assert.deepEqual(await readAll(broker.bootstrap), expected, broker.logs());
      // New records continue the offsets (partition 0 ends at 32, partition 1 at 30).
      for (const p of [0, 1]) {
        await kcat(
          ["-P", "-b", broker.bootstrap, "-t", "legacy", "-p", String(p), "-K:", "-X", "acks=all"],
          `new-${p}:after-${p}\n`,
        );
      }
      const more = [...expected, "0 32 new-0 after-0", "1 30 new-1 after-1"].sort();
      assert.deepEqual(await readAll(broker.bootstrap), more, broker.logs());
      assert.equal(await broker.stop(), 0, broker.logs());

      // The clean stop sealed the new records next to the old segments.
      const p0 = [...Deno.readDirSync(`${dataDir}/default/legacy/0`)].map((e) => e.name).sort();
      assert.ok(p0.includes("segment-00000000000000000032.kfs"), p0.join(", "));
      assert.ok(p0.includes("segment-00000000000000000000.kfs"), p0.join(", "));
      broker = await startBroker({ dataDir });
      assert.deepEqual(await readAll(broker.bootstrap), more, broker.logs());
      assert.equal(await broker.stop(), 0, broker.logs());
    } finally {
      await broker.cleanup();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
