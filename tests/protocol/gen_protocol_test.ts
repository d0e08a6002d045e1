import assert from "node:assert/strict";
import {
  API_KEYS_TO_GENERATE,
  defaultNewerSchemasDir,
  defaultOutDir,
  defaultSchemasDir,
  diffGenerated,
  generate,
  GENERATED_HEADER,
  snakeCase,
  stripJsonComments,
} from "../../scripts/gen_protocol.ts";
import { API_SCHEMA_LIST } from "../../lib/protocol/generated/apis.ts";

const SCRIPT = new URL("../../scripts/gen_protocol.ts", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("generated protocol code is up to date with the schemas", () => {
  const files = generate(defaultSchemasDir(), defaultNewerSchemasDir());
  assert.deepStrictEqual(diffGenerated(files, defaultOutDir()), [], 'run "deno task gen"');
});

Deno.test("generation is reproducible", () => {
  const a = generate(defaultSchemasDir(), defaultNewerSchemasDir());
  const b = generate(defaultSchemasDir(), defaultNewerSchemasDir());
  assert.deepStrictEqual([...a.keys()], [...b.keys()]);
  for (const [name, content] of a) assert.equal(b.get(name), content, name);
  for (const content of a.values()) assert.ok(content.startsWith(GENERATED_HEADER + "\n"));
});

Deno.test("every listed API key has codecs and headers are generated", () => {
  const files = generate(defaultSchemasDir(), defaultNewerSchemasDir());
  assert.deepStrictEqual(
    API_SCHEMA_LIST.map((s) => s.apiKey),
    [...API_KEYS_TO_GENERATE].sort((a, b) => a - b),
  );
  for (const name of ["request_header.ts", "response_header.ts", "produce_request.ts", "apis.ts"]) {
    assert.ok(files.has(name), name);
  }
  assert.equal(files.size, API_KEYS_TO_GENERATE.length * 2 + 3);
});

Deno.test("generated code is already in deno fmt form", async () => {
  const res = await run(["fmt", "--check", defaultOutDir()]);
  assert.equal(res.code, 0, res.stderr + res.stdout);
});

Deno.test("check mode passes on the tree and fails, listing files, on a stale copy", async () => {
  const ok = await run(["run", "--allow-read", "--allow-write", SCRIPT, "--check"]);
  assert.equal(ok.code, 0, ok.stderr);
  const dir = await Deno.makeTempDir({ prefix: "gen_protocol_test_" });
  try {
    for (const [name, content] of generate(defaultSchemasDir(), defaultNewerSchemasDir())) {
      await Deno.writeTextFile(`${dir}/${name}`, content);
    }
    await Deno.writeTextFile(`${dir}/produce_request.ts`, "// edited by hand\n");
    await Deno.writeTextFile(`${dir}/stale_thing.ts`, "// not generated\n");
    const bad = await run([
      "run",
      "--allow-read",
      "--allow-write",
      SCRIPT,
      "--check",
      "--out",
      dir,
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /produce_request\.ts/);
    assert.match(bad.stderr, /stale_thing\.ts/);
    assert.doesNotMatch(bad.stderr, /fetch_request\.ts/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("schema comments are stripped outside strings only", () => {
  const text = '// header\n{ "a": "http://x//y", // trailing\n  "b": "\\"//\\"" /* c */ }\n';
  assert.deepStrictEqual(JSON.parse(stripJsonComments(text)), { a: "http://x//y", b: '"//"' });
});

Deno.test("file and constant names", () => {
  assert.equal(snakeCase("ProduceRequest"), "produce_request");
  assert.equal(snakeCase("OffsetForLeaderEpochResponse"), "offset_for_leader_epoch_response");
  assert.equal(
    snakeCase("DescribeUserScramCredentialsRequest"),
    "describe_user_scram_credentials_request",
  );
  assert.equal(snakeCase("KRaftVersionRecord"), "k_raft_version_record");
});
