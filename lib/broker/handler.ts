/**
 * The contract between the connection loop and the per-API handlers.
 *
 * Each Kafka API lives in its own file under lib/broker/ and exports one
 * `ApiHandler` declaring the versions it serves; `handler_table.ts` collects
 * them, and ApiVersions is derived from that table so the advertised ranges
 * can never disagree with the code.
 */
import type { MessageCodec } from "../protocol/codec.ts";
import type { Broker } from "./broker.ts";
import type { ConnectionSecurity } from "../server/connection.ts";

/** What a handler knows about the request besides its body. */
export interface RequestContext {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** Remote address of the client, `host:port`. */
  readonly clientAddress: string;
  readonly connectionId: number;
  readonly broker: Broker;
  /** The listener the client came in through and who it is (SASL handlers change it). */
  readonly security: ConnectionSecurity;
  /**
   * Runs `fn` after the earlier `sequential` calls of this connection have
   * settled: Produce uses it so pipelined requests append in arrival order.
   */
  sequential<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * A handler returns the response body, or `null` when the protocol sends no
 * response (Produce with acks=0).
 */
export interface ApiHandler<Req = unknown, Res = unknown> {
  readonly apiKey: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly request: MessageCodec<Req>;
  readonly response: MessageCodec<Res>;
  handle(request: Req, ctx: RequestContext): Promise<Res | null> | Res | null;
}

/** Helper so handler files get full type inference from their codecs. */
export function defineHandler<Req, Res>(handler: ApiHandler<Req, Res>): ApiHandler<Req, Res> {
  if (handler.minVersion < handler.request.minVersion) {
    throw new Error(`${handler.name}: minVersion below the schema's`);
  }
  if (handler.maxVersion > handler.request.maxVersion) {
    throw new Error(`${handler.name}: maxVersion above the schema's`);
  }
  return handler;
}
