/**
 * Regenerates the README sections that are derived from code, between
 * `<!-- BEGIN name -->` and `<!-- END name -->` markers:
 * - `api-table`: the APIs and versions the broker advertises (the handler table);
 * - `serve-config`: the settings of `kafscale serve` (flags, environment, defaults);
 * - `topic-configs`: the topic configs, with what the broker does with each (topic_config.ts).
 *
 * `deno task readme` writes README.md; `--check` exits 1 when it is stale
 * (tests/readme_test.ts runs the same comparison).
 */
import { HANDLERS } from "../lib/broker/handler_table.ts";
import { SERVE_SETTINGS } from "../lib/cli/serve_config.ts";
import { TOPIC_CONFIGS } from "../lib/broker/topic_config.ts";

export function apiTable(): string {
  const rows = [...HANDLERS.values()]
    .sort((a, b) => a.apiKey - b.apiKey)
    .map((h) => `| ${h.apiKey} | ${h.name} | ${h.minVersion}-${h.maxVersion} |`);
  return ["| Key | API | Versions |", "| --- | --- | --- |", ...rows].join("\n");
}

export function serveConfigTable(): string {
  const rows = SERVE_SETTINGS.map((s) => {
    const def = s.default === null ? "—" : `\`${s.default}\``;
    return `| \`--${s.name}\` | \`${s.env}\` | ${def} | ${s.help} |`;
  });
  return [
    "| Flag / config-file key | Environment | Default | Meaning |",
    "| --- | --- | --- | --- |",
    "| `--config` | `KAFSCALE_CONFIG` | — | Settings file: `key=value` lines or a JSON object |",
    ...rows,
  ].join("\n");
}

export function topicConfigTable(): string {
  const setting = (name: string) => Number(SERVE_SETTINGS.find((s) => s.name === name)!.default);
  const defaults = {
    segmentBytes: setting("segment-bytes"),
    messageMaxBytes: setting("message-max-bytes"),
  };
  const rows = TOPIC_CONFIGS.map((c) => {
    const value = c.defaultValue(defaults);
    const name = c.legacy ? `\`${c.name}\` (Kafka 3.x)` : `\`${c.name}\``;
    const use = c.use === "acted" ? "**acted on**" : "stored only";
    // The Broker column already says "stored only".
    const effect = c.effect.replace(/^Stored only(: |\.$)/, "");
    const what = effect === "" ? "—" : effect[0].toUpperCase() + effect.slice(1);
    return `| ${name} | ${value === "" ? "(empty)" : `\`${value}\``} | ${use} | ${what} |`;
  });
  return [
    "| Topic config | Default | Broker | What the broker does with it |",
    "| --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

/** Formats markdown exactly as `deno fmt` does, so a fresh render equals the committed file. */
async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

export async function render(readme: string): Promise<string> {
  const sections: Record<string, string> = {
    "api-table": apiTable(),
    "serve-config": serveConfigTable(),
    "topic-configs": topicConfigTable(),
  };
  let out = readme;
  for (const [name, body] of Object.entries(sections)) {
    const re = new RegExp(`(<!-- BEGIN ${name} -->\\n)[\\s\\S]*?(<!-- END ${name} -->)`);
    if (!re.test(out)) throw new Error(`README.md has no "${name}" markers`);
    out = out.replace(re, `$1${body}\n$2`);
  }
  return await formatMarkdown(out);
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  const current = await Deno.readTextFile(path);
  const next = await render(current);
  if (Deno.args.includes("--check")) {
    if (next !== current) {
      console.error('README.md is stale: run "deno task readme"');
      Deno.exit(1);
    }
  } else if (next !== current) {
    await Deno.writeTextFile(path, next);
    console.log("README.md updated");
  }
}
