/**
 * Every API this broker serves, one handler per file. ApiVersions is
 * derived from this table. APIs absent here are not advertised, and a
 * request for one closes the connection with a log line.
 */
import type { ApiHandler } from "./handler.ts";
import { apiVersionsHandler } from "./api_versions.ts";
import { PRODUCE_HANDLER } from "./produce.ts";
import { FETCH_HANDLER } from "./fetch.ts";
import { LIST_OFFSETS_HANDLER } from "./list_offsets.ts";
import { METADATA_HANDLER } from "./metadata.ts";
import { SASL_HANDSHAKE_HANDLER } from "./sasl_handshake.ts";
import { CREATE_TOPICS_HANDLER } from "./create_topics.ts";

function buildTable(): ReadonlyMap<number, ApiHandler> {
  const table = new Map<number, ApiHandler>();
  // deno-lint-ignore no-explicit-any
  const add = (h: ApiHandler<any, any>) => {
    if (table.has(h.apiKey)) throw new Error(`Two handlers for API key ${h.apiKey}`);
    table.set(h.apiKey, h as ApiHandler);
  };
  add(PRODUCE_HANDLER);
  add(FETCH_HANDLER);
  add(LIST_OFFSETS_HANDLER);
  add(METADATA_HANDLER);
  add(SASL_HANDSHAKE_HANDLER);
  add(apiVersionsHandler(() => table));
  add(CREATE_TOPICS_HANDLER);
  return table;
}

export const HANDLERS: ReadonlyMap<number, ApiHandler> = buildTable();
