/**
 * FindCoordinator (10), versions 0-4 (batched keys from v4, KIP-699). Every
 * group is coordinated by this broker for now; the group coordinator loads a
 * group from the MetadataStore when it first sees it, so moving groups
 * between brokers later changes only this answer. Transaction coordinators
 * do not exist (no transactions): COORDINATOR_NOT_AVAILABLE.
 */
import {
  FIND_COORDINATOR_REQUEST,
  type FindCoordinatorRequest,
} from "../protocol/generated/find_coordinator_request.ts";
import {
  FIND_COORDINATOR_RESPONSE,
  type FindCoordinatorResponse,
} from "../protocol/generated/find_coordinator_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { defineHandler } from "./handler.ts";
import type { Broker } from "./broker.ts";

/** Kafka's CoordinatorType. */
export const COORDINATOR_KEY_TYPES = { GROUP: 0, TRANSACTION: 1, SHARE: 2 } as const;

interface Lookup {
  errorCode: number;
  errorMessage: string | null;
  nodeId: number;
  host: string;
  port: number;
}

function lookup(broker: Broker, keyType: number): Lookup {
  const fail = (errorCode: number, errorMessage: string) => ({
    errorCode,
    errorMessage,
    nodeId: -1,
    host: "",
    port: -1,
  });
  if (keyType === COORDINATOR_KEY_TYPES.TRANSACTION) {
    return fail(ERROR_CODES.COORDINATOR_NOT_AVAILABLE, "Transactions are not supported");
  }
  if (keyType !== COORDINATOR_KEY_TYPES.GROUP) {
    return fail(ERROR_CODES.INVALID_REQUEST, `Unsupported coordinator key type ${keyType}`);
  }
  if (!broker.coordinator.active) {
    return fail(ERROR_CODES.COORDINATOR_NOT_AVAILABLE, "The group coordinator is stopping");
  }
  return {
    errorCode: ERROR_CODES.NONE,
    errorMessage: null,
    nodeId: broker.settings.nodeId,
    host: broker.settings.host,
    port: broker.settings.port,
  };
}

export const FIND_COORDINATOR_HANDLER = defineHandler<
  FindCoordinatorRequest,
  FindCoordinatorResponse
>({
  apiKey: 10,
  name: "FindCoordinator",
  minVersion: 0,
  maxVersion: 4,
  request: FIND_COORDINATOR_REQUEST,
  response: FIND_COORDINATOR_RESPONSE,
  handle(req, ctx) {
    const keyType = ctx.apiVersion >= 1 ? req.keyType ?? 0 : COORDINATOR_KEY_TYPES.GROUP;
    if (ctx.apiVersion >= 4) {
      return {
        throttleTimeMs: 0,
        coordinators: (req.coordinatorKeys ?? []).map((key) => ({
          key,
          ...lookup(ctx.broker, keyType),
        })),
      };
    }
    return { throttleTimeMs: 0, ...lookup(ctx.broker, keyType) };
  },
});
