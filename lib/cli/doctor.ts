/**
 * `kafscale doctor [serve options]`: checks the configuration `kafscale serve` would run with,
 * without starting the broker, and says in plain words what is wrong:
 *
 * - the data directory: a writable directory, free space and inodes (embedded mode);
 * - S3: the bucket answers with the given credentials, and conditional puts are enforced
 *   (without them a stalled former owner could overwrite objects);
 * - etcd: reachable, credentials accepted;
 * - the ports of the Kafka, HTTP and control listeners are free;
 * - the files the settings name (etcd TLS certificates and keys) are readable PEM.
 *
 * Exit codes: 0 everything is fine, 3 warnings only, 1 at least one error, 2 the configuration
 * itself cannot be read (as `serve` would refuse it).
 */
import { join } from "node:path";
import { ConsoleLogger, type Logger, silentLogger } from "../util/logger.ts";
import { SystemClock } from "../util/clock.ts";
import { ConfigError, type ServeConfig } from "./serve_config.ts";
import { loadServeConfig, openMetadataStore, openObjectStore } from "./serve.ts";

export const DOCTOR_EXIT = { OK: 0, ERRORS: 1, CONFIG: 2, WARNINGS: 3 } as const;

/** Below these a data directory gets a warning. */
export const DISK_FREE_WARN_BYTES = 1024 * 1024 * 1024;
export const INODES_FREE_WARN = 10_000;
/** Bound on each remote check. */
const CHECK_TIMEOUT_MS = 10_000;

export type CheckStatus = "ok" | "warn" | "error";

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
}

export function doctorHelp(): string {
  return [
    "Usage: kafscale doctor [serve options] [--output text|json]",
    "",
    "Checks the configuration `kafscale serve` would run with (the same flags, KAFSCALE_*",
    "variables and --config file), without starting the broker: data directory, disk space and",
    "inodes, S3 reachability and conditional puts, etcd reachability and credentials, free",
    "ports, certificate files. Exit 0: all fine; 3: warnings only; 1: errors; 2: the",
    "configuration cannot be read.",
  ].join("\n");
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

async function withTimeout<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `df` figures for the filesystem of `dir`: free bytes and free inodes (null when unknown). */
async function freeSpace(dir: string): Promise<{ bytes: number | null; inodes: number | null }> {
  const df = async (flag: string): Promise<number | null> => {
    try {
      const out = await new Deno.Command("df", {
        args: ["-P", flag, dir],
        stdout: "piped",
        stderr: "null",
      })
        .output();
      if (out.code !== 0) return null;
      const last = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
      const free = Number(last.split(/\s+/)[3]);
      return Number.isFinite(free) ? free : null;
    } catch {
      return null;
    }
  };
  const [kib, inodes] = await Promise.all([df("-k"), df("-i")]);
  return { bytes: kib === null ? null : kib * 1024, inodes };
}

async function checkDataDir(config: ServeConfig): Promise<CheckResult[]> {
  const dir = config.dataDir;
  const name = "data directory";
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return [{
        name,
        status: "error",
        detail: `"${dir}" cannot be read: ${(error as Error).message}`,
      }];
    }
  }
  if (info && !info.isDirectory) {
    return [{ name, status: "error", detail: `"${dir}" is not a directory` }];
  }
  // A directory that does not exist yet is created by serve: its nearest existing parent must
  // take it. Either way a probe file is written and removed.
  let probeDir = dir;
  if (!info) {
    probeDir = dir;
    for (let i = 0; i < 64; i++) {
      const parent = join(probeDir, "..");
      if (parent === probeDir) break;
      probeDir = parent;
      try {
        if ((await Deno.stat(probeDir)).isDirectory) break;
      } catch {
        // keep climbing
      }
    }
  }
  const probe = join(probeDir, `.kafscale-doctor-${crypto.randomUUID()}`);
  try {
    await Deno.writeTextFile(probe, "probe\n");
    await Deno.remove(probe);
  } catch (error) {
    return [{
      name,
      status: "error",
      detail: `"${probeDir}" is not writable by this user: ${(error as Error).message}`,
    }];
  }
  const results: CheckResult[] = [{
    name,
    status: "ok",
    detail: info ? `"${dir}" is a writable directory` : `"${dir}" will be created in "${probeDir}"`,
  }];
  const free = await freeSpace(probeDir);
  if (free.bytes === null || free.inodes === null) {
    results.push({
      name: "disk space",
      status: "warn",
      detail: "cannot tell the free space (df failed)",
    });
  } else {
    const low = free.bytes < DISK_FREE_WARN_BYTES ||
      (free.inodes > 0 && free.inodes < INODES_FREE_WARN);
    results.push({
      name: "disk space",
      status: low ? "warn" : "ok",
      detail: `${gib(free.bytes)} and ${free.inodes} inodes free` +
        (low ? ` (below ${gib(DISK_FREE_WARN_BYTES)} or ${INODES_FREE_WARN} inodes)` : ""),
    });
  }
  try {
    await Deno.stat(join(dir, ".metadata", "LOCK"));
    results.push({
      name: "metadata store",
      status: "ok",
      detail: `"${join(dir, ".metadata")}" exists (a broker may be running on it)`,
    });
  } catch {
    // no store yet: nothing to say
  }
  return results;
}

async function checkS3(config: ServeConfig, logger: Logger): Promise<CheckResult[]> {
  const name = "s3";
  try {
    const opened = await withTimeout("S3", openObjectStore(config, new SystemClock(), logger));
    try {
      const problem = await withTimeout("S3", opened.check.check());
      if (problem !== null) throw new Error(problem);
      const conditional = opened.store.supportsConditionalPut;
      return [
        { name, status: "ok", detail: `bucket "${config.s3Bucket}" answers` },
        {
          name: "s3 conditional puts",
          status: conditional ? "ok" : "warn",
          detail: conditional
            ? 'enforced ("If-None-Match: *"): a stalled former owner cannot overwrite objects'
            : "not enforced: a stalled former owner could overwrite objects; use a store that " +
              "supports them, or accept weaker fencing",
        },
      ];
    } finally {
      await opened.store.close();
    }
  } catch (error) {
    return [{ name, status: "error", detail: oneLine((error as Error).message) }];
  }
}

async function checkEtcd(config: ServeConfig, logger: Logger): Promise<CheckResult[]> {
  const name = "etcd";
  try {
    const opened = await withTimeout("etcd", openMetadataStore(config, new SystemClock(), logger));
    try {
      await withTimeout("etcd", opened.store.get("/kafscale/doctor-probe"));
      return [{ name, status: "ok", detail: `${config.etcdEndpoints.join(",")} answers` }];
    } finally {
      await opened.store.close();
    }
  } catch (error) {
    return [{ name, status: "error", detail: oneLine((error as Error).message) }];
  }
}

async function checkPorts(config: ServeConfig): Promise<CheckResult[]> {
  const listeners: [string, { host: string; port: number }][] = [
    ["kafka port", config.listen],
    ["http port", config.httpListen],
    ["control port", config.controlListen],
  ];
  return await Promise.all(listeners.map(([name, addr]) => {
    if (addr.port === 0) {
      return { name, status: "ok" as const, detail: `${addr.host}:0 (a free port is picked)` };
    }
    try {
      const listener = Deno.listen({ hostname: addr.host, port: addr.port });
      listener.close();
      return { name, status: "ok" as const, detail: `${addr.host}:${addr.port} is free` };
    } catch (error) {
      const why = error instanceof Deno.errors.AddrInUse
        ? "is in use (another broker or program listens there)"
        : `cannot be listened on: ${(error as Error).message}`;
      return { name, status: "error" as const, detail: `${addr.host}:${addr.port} ${why}` };
    }
  }));
}

async function checkFiles(config: ServeConfig): Promise<CheckResult[]> {
  const files: [string, string | null, string][] = [
    ["etcd-ca-file", config.etcdCaFile, "CERTIFICATE"],
    ["etcd-cert-file", config.etcdCertFile, "CERTIFICATE"],
    ["etcd-key-file", config.etcdKeyFile, "PRIVATE KEY"],
  ];
  const out: CheckResult[] = [];
  for (const [setting, path, kind] of files) {
    if (path === null) continue;
    try {
      const text = await Deno.readTextFile(path);
      const ok = text.includes("-----BEGIN ") && text.includes(kind);
      out.push({
        name: setting,
        status: ok ? "ok" : "error",
        detail: ok ? `"${path}" is a PEM ${kind.toLowerCase()}` : `"${path}" holds no PEM ${kind}`,
      });
    } catch (error) {
      out.push({
        name: setting,
        status: "error",
        detail: `"${path}": ${(error as Error).message}`,
      });
    }
  }
  return out;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").replace(/^Cannot start: /, "").trim();
}

/** Runs every check that applies to `config`. */
export async function diagnose(
  config: ServeConfig,
  logger: Logger = silentLogger,
): Promise<CheckResult[]> {
  const remote = config.s3Bucket !== null;
  const groups = await Promise.all([
    remote ? Promise.resolve([]) : checkDataDir(config),
    remote ? checkS3(config, logger) : Promise.resolve([]),
    config.etcdEndpoints.length > 0 ? checkEtcd(config, logger) : Promise.resolve([]),
    checkPorts(config),
    checkFiles(config),
  ]);
  return groups.flat();
}

export async function runDoctor(args: string[]): Promise<number> {
  let output = "text";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--output" || args[i] === "-o") output = args[++i] ?? "";
    else if (args[i].startsWith("--output=")) output = args[i].slice("--output=".length);
    else if (args[i] === "-h" || args[i] === "--help") {
      console.log(doctorHelp());
      return 0;
    } else rest.push(args[i]);
  }
  if (output !== "text" && output !== "json") {
    console.error(`Option "--output" must be text or json, got "${output}"`);
    return DOCTOR_EXIT.CONFIG;
  }
  let config;
  try {
    config = await loadServeConfig(rest);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`ERROR config: ${error.message}`);
      return DOCTOR_EXIT.CONFIG;
    }
    throw error;
  }
  if (config === "help") {
    console.log(doctorHelp());
    return 0;
  }
  const results = await diagnose(config, new ConsoleLogger("error"));
  if (output === "json") {
    console.log(JSON.stringify({ checks: results }, null, 2));
  } else {
    const width = Math.max(...results.map((r) => r.name.length));
    for (const r of results) {
      console.log(`${r.status.toUpperCase().padEnd(5)} ${r.name.padEnd(width)}  ${r.detail}`);
    }
  }
  if (results.some((r) => r.status === "error")) return DOCTOR_EXIT.ERRORS;
  if (results.some((r) => r.status === "warn")) return DOCTOR_EXIT.WARNINGS;
  return DOCTOR_EXIT.OK;
}
