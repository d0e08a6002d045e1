/**
 * Structured, line-oriented logging to stderr. Injected, never global.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

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

  constructor(
    level: LogLevel = "info",
    base: Record<string, unknown> = {},
    sink: (line: string) => void = (line) => console.error(line),
  ) {
    this.#min = LEVEL_RANK[level];
    this.#base = base;
    this.#sink = sink;
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
    );
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVEL_RANK[level] < this.#min) return;
    const all = { ...this.#base, ...fields };
    const extra = Object.entries(all)
      .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
      .join(" ");
    this.#sink(
      `${new Date().toISOString()} ${level.toUpperCase()} ${msg}${extra ? " " + extra : ""}`,
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
