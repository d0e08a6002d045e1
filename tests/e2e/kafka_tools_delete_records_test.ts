/**
 * DeleteRecords through real clients: Apache Kafka's `kafka-delete-records.sh`
 * (DeleteRecordsCommand, which calls the Java Admin client's deleteRecords) against a live
 * `kafscale serve`, from the Maven jars that scripts/setup_compat.sh fetches (as
 * kafka_tools_test.ts). The tool reports each partition's new low watermark; kcat then reads from
 * the new start, and an offset beyond the high watermark is reported as an error.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { REPO_ROOT, requireFile, runProgram } from "./client_runner.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const CLASSPATH = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}/*:` +
  `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/*`;
const DELETE_RECORDS_COMMAND = "org.apache.kafka.tools.DeleteRecordsCommand";
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
const TOOL_TIMEOUT_MS = 60_000;

Deno.test("kafka-delete-records.sh against kafscale (DeleteRecords through the Java Admin client)", async () => {
  await requireFile(
    `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/kafka-tools-${KAFKA_VERSION}.jar`,
  );
  await using broker = await startBroker();
  const dir = await Deno.makeTempDir({ prefix: "kafscale-delete-records-" });
  try {
    const kcat = async (args: string[], input?: string) => {
      const r = await runProgram([
        "bash",
        "-c",
        `kcat ${args.join(" ")}${input ? " <<'EOF'\n" + input + "\nEOF" : ""}`,
      ], {
        timeoutMs: TOOL_TIMEOUT_MS,
      });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const created = await runProgram([
      Deno.execPath(),
      "run",
      "-A",
      `${REPO_ROOT}cli.ts`,
      "topics",
      "create",
      "dr",
      "--partitions",
      "2",
      "--bootstrap-server",
      broker.bootstrap,
    ], { timeoutMs: TOOL_TIMEOUT_MS });
    assert.equal(created.code, 0, created.stderr);
    const lines = Array.from({ length: 10 }, (_, i) => `k${i}:v${i}`).join("\n");
    await kcat(
      ["-P", "-b", broker.bootstrap, "-t", "dr", "-p", "0", "-K:", "-X", "acks=all"],
      lines,
    );

    const deleteRecords = async (partitions: { partition: number; offset: number }[]) => {
      const file = `${dir}/offsets.json`;
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          partitions: partitions.map((p) => ({ topic: "dr", ...p })),
          version: 1,
        }),
      );
      const r = await runProgram([
        ...JAVA,
        "-cp",
        CLASSPATH,
        DELETE_RECORDS_COMMAND,
        "--bootstrap-server",
        broker.bootstrap,
        "--offset-json-file",
        file,
      ], { timeoutMs: TOOL_TIMEOUT_MS });
      assert.equal(r.timedOut, false, "kafka-delete-records.sh timed out");
      return r;
    };

    const ok = await deleteRecords([{ partition: 0, offset: 6 }, { partition: 1, offset: -1 }]);
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    assert.match(ok.stdout, /partition: dr-0\s+low_watermark: 6/);
    assert.match(ok.stdout, /partition: dr-1\s+low_watermark: 0/);
    const rest = await kcat([
      "-C",
      "-b",
      broker.bootstrap,
      "-t",
      "dr",
      "-p",
      "0",
      "-o",
      "beginning",
      "-e",
      "-f",
      "'%o %k\\n'",
    ]);
    assert.deepEqual(rest.trim().split("\n"), ["6 k6", "7 k7", "8 k8", "9 k9"]);

    const bad = await deleteRecords([{ partition: 0, offset: 99 }]);
    assert.match(bad.stdout + bad.stderr, /dr-0\s+error: \S*OffsetOutOfRangeException/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
