import assert from "node:assert/strict";
import {
  defaultOutDir,
  defaultSchemasDir,
  diffGenerated,
  generate,
} from "../../scripts/gen_protocol.ts";
import {
  NEWER_JAR,
  OLDER_JAR,
  schemaDirFromJar,
  schemaEntries,
} from "../../scripts/kafka_schema_jars.ts";

// The jars come from ~/.m2 (the Java tests' Maven cache) or Maven Central.
Deno.test("the kafka-clients 3.9.1 and 4.4.0 jars generate exactly the committed codecs", async () => {
  const older = await schemaDirFromJar(OLDER_JAR);
  const newer = await schemaDirFromJar(NEWER_JAR);
  assert.ok(Deno.statSync(`${newer}/ProduceRequest.json`).isFile);
  assert.deepStrictEqual(diffGenerated(generate(older, newer), defaultOutDir()), []);
  // Without the 4.4 set the codecs stop at Kafka 3.9's versions, so the merge is what counts.
  assert.notDeepStrictEqual(diffGenerated(generate(defaultSchemasDir()), defaultOutDir()), []);
});

Deno.test("a jar whose checksum does not match the pin is refused", async () => {
  await assert.rejects(
    schemaDirFromJar({ version: NEWER_JAR.version, sha256: "0".repeat(64) }),
    /does not match the pinned/,
  );
});

Deno.test("a file that is not a zip is refused with a clear error", async () => {
  await assert.rejects(schemaEntries(new Uint8Array(100)), /Not a zip file/);
});
