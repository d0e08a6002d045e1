/**
 * packaging/systemd: the unit starts `kafscale serve` as a dedicated user with a state
 * directory, stops it with SIGTERM (a clean stop) and restarts it on failure (a broken invariant
 * exits 70); every setting the unit and its environment file name is a real `serve` setting, and
 * systemd-analyze accepts the unit where it is installed.
 */
import assert from "node:assert/strict";
import { SERVE_SETTINGS } from "../../lib/cli/serve_config.ts";

const DIR = new URL("../../packaging/systemd/", import.meta.url);

function entries(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#") || t.startsWith("[")) continue;
    const eq = t.indexOf("=");
    out.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return out;
}

Deno.test("systemd unit: user, state directory, clean stop, restart on failure, real flags", async () => {
  const unit = entries(await Deno.readTextFile(new URL("kafscale.service", DIR)));
  assert.equal(unit.get("User"), "kafscale");
  assert.equal(unit.get("KillSignal"), "SIGTERM");
  assert.equal(unit.get("Restart"), "on-failure");
  assert.equal(unit.get("StateDirectory"), "kafscale");
  assert.equal(unit.get("EnvironmentFile"), "-/etc/kafscale/kafscale.env");
  const exec = unit.get("ExecStart")!.split(/\s+/);
  assert.deepEqual(exec.slice(0, 2), ["/usr/local/bin/kafscale", "serve"]);
  const flags = new Set(SERVE_SETTINGS.map((s) => `--${s.name}`));
  for (const arg of exec.slice(2).filter((a) => a.startsWith("--"))) {
    assert.ok(flags.has(arg), `${arg} is a serve flag`);
  }
  assert.equal(exec[exec.indexOf("--data-dir") + 1], "/var/lib/kafscale");
});

Deno.test("systemd environment file: every variable, set or commented out, is a serve setting", async () => {
  const text = await Deno.readTextFile(new URL("kafscale.env", DIR));
  const names = [...text.matchAll(/^#?(KAFSCALE_[A-Z0-9_]+)=/gm)].map((m) => m[1]);
  assert.ok(names.length >= 5);
  const known = new Set<string>(SERVE_SETTINGS.map((s) => s.env));
  for (const name of names) assert.ok(known.has(name), `${name} is a serve setting`);
});

Deno.test("systemd unit: systemd-analyze verify accepts it", async () => {
  const unitPath = new URL("kafscale.service", DIR).pathname;
  let out;
  try {
    out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", unitPath],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      console.log("systemd-analyze is not installed here; the unit's keys were checked above");
      return;
    }
    throw error;
  }
  const text = new TextDecoder().decode(out.stderr);
  // Only the missing binary and user are expected on a build machine.
  const problems = text.split("\n").filter((l) =>
    l.trim() !== "" && !/\/usr\/local\/bin\/kafscale|kafscale\.service: Command|user|User/i.test(l)
  );
  assert.deepEqual(problems, [], text);
});
