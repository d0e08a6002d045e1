/**
 * Structured, line-oriented logging to stderr. Injected, never global.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * How lines look. "text": `<ISO time> LEVEL message key=value...`. "journald": the same without
 * the time (the journal stamps each line) and with a `<N>` syslog priority prefix, so
 * `journalctl -p warning` filters by level (used when systemd gives the process a journal
 * stream, JOURNAL_STREAM). "json": one JSON object per line (`ts`, `level`, `msg`, then the
 * fields), for log shippers.
 */
export type LogFormat = "text" | "journald" | "json";

/** sd-daemon(3) priorities: debug 7, info 6, warning 4, err 3. */
const JOURNAL_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export class ConsoleLogger implements Logger {
  readonly #min: number;
  readonly #base: Record<string, unknown>;
  readonly #sink: (line: string) => void;

  readonly #format: LogFormat;

  constructor(
    level: LogLevel = "info",
    base: Record<string, unknown> = {},
    sink: (line: string) => void = (line) => console.error(line),
    format: LogFormat = "text",
  ) {
    this.#min = LEVEL_RANK[level];
    this.#base = base;
    this.#sink = sink;
    this.#format = format;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#log("error", msg, fields);
  }
  child(fields: Record<string, unknown>): Logger {
    return new ConsoleLogger(
      (Object.entries(LEVEL_RANK).find(([, r]) => r === this.#min)?.[0] ?? "info") as LogLevel,
      { ...this.#base, ...fields },
      this.#sink,
      this.#format,
    );
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVEL_RANK[level] < this.#min) return;
    const all = { ...this.#base, ...fields };
    if (this.#format === "json") {
      this.#sink(JSON.stringify(
        { ts: new Date().toISOString(), level, msg, ...all },
        (_key, value) => (typeof value === "bigint" ? String(value) : value),
      ));
      return;
    }
    const extra = Object.entries(all)
      .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
      .join(" ");
    const line = `${level.toUpperCase()} ${msg}${extra ? " " + extra : ""}`;
    this.#sink(
      this.#format === "journald"
        ? `<${JOURNAL_PRIORITY[level]}>${line}`
        : `${new Date().toISOString()} ${line}`,
    );
  }
}

/** A logger that drops everything (tests that assert on other things). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
