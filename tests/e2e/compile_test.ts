/**
 * The single binary: `deno compile` of cli.ts with the repository's lockfile (`--frozen`) must
 * resolve the whole module graph and embed everything the broker needs at run time. Deno's
 * `denort` runtime cannot be downloaded on these machines, so DENORT_BIN points the compile at
 * the plain `deno` binary: the compile still builds the payload and lists every embedded module
 * and file (its output cannot run; the release workflow builds the real binaries elsewhere).
 *
 * The product reads no file of its own at run time (only the data directory, the config file and
 * certificates the user names): a read relative to the module (`import.meta.url`,
 * `import.meta.dirname`) would find nothing inside the binary, so it is refused here too.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./client_runner.ts";

const decoder = new TextDecoder();

/** Embedded packages and source folders the broker cannot run without. */
const REQUIRED = [
  "cli.ts",
  "@grpc",
  "@aws-sdk",
  "lz4js",
  "snappyjs",
  "broker",
  "cli",
  "client",
  "control",
  "coordinator",
  "log",
  "metadata",
  "protocol",
  "server",
  "storage",
  "util",
];

Deno.test("deno compile: the graph resolves with the lockfile and every runtime module is embedded", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
  assert.equal(tasks.compile, "deno compile -A --frozen --output dist/kafscale cli.ts");
  const dir = await Deno.makeTempDir({ prefix: "kafscale-compile-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "-A", "--frozen", "--output", `${dir}/kafscale`, "cli.ts"],
      cwd: REPO_ROOT,
      env: { DENORT_BIN: Deno.execPath(), NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = decoder.decode(out.stdout) + decoder.decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /Embedded Files/);
    // Tree lines: "├── cli.ts (560B)", "│   ├── lz4js/0.2.0/* (…)", "  ├─┬ control (…)".
    const entries = text.split("\n").map((line) => line.replace(/^[\s│├└─┬]+/, ""));
    for (const name of REQUIRED) {
      assert.ok(
        entries.some((e) => e.startsWith(`${name}/`) || e.startsWith(`${name} (`)),
        `"${name}" is embedded:\n${text}`,
      );
    }
    // No module is fetched from the network at run time (JSR and https: imports are not used).
    assert.doesNotMatch(text, /Remote modules:\s*[1-9]\d*(\.\d+)?(KB|MB)/);
    const size = (await Deno.stat(`${dir}/kafscale`)).size;
    assert.ok(size > 1_000_000, `the payload was written (${size} bytes)`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno compile: the product reads no file relative to its own modules", async () => {
  const offenders: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(path);
        if (/import\.meta\.(url|dirname|filename|resolve)/.test(text)) offenders.push(path);
      }
    }
  };
  await walk(`${REPO_ROOT}lib`);
  assert.deepEqual(offenders, [], "modules that locate files next to themselves");
});
