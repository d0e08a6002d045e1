/**
 * FindCoordinator (10), versions 0-4 (batched keys from v4, KIP-699).
 *
 * A group's coordinator, the same answer on every broker sharing the metadata store:
 * - the group's live owner (its owner key, `ClusterMetadata.getGroupOwner`, hangs on the
 *   owner's session lease) while it is registered; an owner that is not registered has no
 *   address to give: COORDINATOR_NOT_AVAILABLE, and clients ask again;
 * - else a registered broker picked by hashing the group id (the coordinator takes the
 *   group's owner key on the first request it serves for it).
 * When the store does not answer, this broker claims the group: its coordinator answers
 * retriable errors until the store is back. With one broker the answer is always this one.
 *
 * A transactional id's coordinator is the id's hash among the registered brokers (this one
 * alone in embedded mode): transaction records live in the store, so whichever broker the hash
 * names after a failover loads them from there (`transactionCoordinatorOf`). Share
 * coordinators (key type 2) do not exist: INVALID_REQUEST.
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
import type { BrokerRegistration } from "../metadata/cluster_metadata.ts";
import { mapBounded } from "../log/bounded.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { type Broker, transactionCoordinatorOf } from "./broker.ts";
import { type BrokerAddress, endpointOf, hashName, selfAddress } from "./partition_leaders.ts";

/** Kafka's CoordinatorType. */
export const COORDINATOR_KEY_TYPES = { GROUP: 0, TRANSACTION: 1, SHARE: 2 } as const;

/** Bound on owner look-ups in flight for one batched (v4) request. */
const OWNER_LOOKUP_CONCURRENCY = 16;

interface Lookup {
  errorCode: number;
  errorMessage: string | null;
  nodeId: number;
  host: string;
  port: number;
}

function fail(errorCode: number, errorMessage: string): Lookup {
  return { errorCode, errorMessage, nodeId: -1, host: "", port: -1 };
}

function found(b: BrokerAddress): Lookup {
  return {
    errorCode: ERROR_CODES.NONE,
    errorMessage: null,
    nodeId: b.nodeId,
    host: b.host,
    port: b.port,
  };
}

/** The registered brokers by node id, this one included; null when the store does not answer. */
async function liveBrokers(
  broker: Broker,
  listener: string,
): Promise<Map<number, BrokerAddress> | null> {
  let registered: BrokerRegistration[];
  try {
    registered = await broker.metadata.listBrokers();
  } catch (err) {
    broker.logger.debug("FindCoordinator: cannot list brokers; claiming the groups", {
      err: String(err),
    });
    return null;
  }
  const byId = new Map<number, BrokerAddress>();
  for (const r of registered) {
    byId.set(r.brokerId, { nodeId: r.brokerId, ...endpointOf(r, listener), rack: r.rack });
  }
  byId.set(broker.settings.nodeId, selfAddress(broker, listener));
  return byId;
}

/** The coordinator of `groupId` among `live` (null: only this broker is known). */
async function groupCoordinator(
  broker: Broker,
  groupId: string,
  live: Map<number, BrokerAddress> | null,
  listener: string,
): Promise<Lookup> {
  const self = found(selfAddress(broker, listener));
  if (live === null) return self;
  let owner;
  try {
    owner = await broker.metadata.getGroupOwner(groupId);
  } catch (err) {
    broker.logger.debug("FindCoordinator: cannot read the group owner; claiming the group", {
      group: groupId,
      err: String(err),
    });
    return self;
  }
  if (owner) {
    const address = live.get(owner.brokerId);
    return address ? found(address) : fail(
      ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
      `Group "${groupId}" is owned by broker ${owner.brokerId}, which is not registered; retry`,
    );
  }
  const ids = [...live.keys()].sort((a, b) => a - b);
  return found(live.get(ids[hashName(groupId) % ids.length])!);
}

async function lookup(
  broker: Broker,
  keyType: number,
  keys: string[],
  listener: string,
): Promise<Lookup[]> {
  if (keyType === COORDINATOR_KEY_TYPES.TRANSACTION) {
    const live = await liveBrokers(broker, listener);
    return keys.map((key) => {
      if (!key) return fail(ERROR_CODES.INVALID_REQUEST, "Empty transactional id");
      if (live === null) return found(selfAddress(broker, listener));
      const id = transactionCoordinatorOf(key, [...live.keys()], broker.settings.nodeId);
      return found(live.get(id)!);
    });
  }
  if (keyType !== COORDINATOR_KEY_TYPES.GROUP) {
    return keys.map(() =>
      fail(ERROR_CODES.INVALID_REQUEST, `Unsupported coordinator key type ${keyType}`)
    );
  }
  if (!broker.coordinator.active) {
    return keys.map(() =>
      fail(ERROR_CODES.COORDINATOR_NOT_AVAILABLE, "The group coordinator is stopping")
    );
  }
  const live = await liveBrokers(broker, listener);
  const results = await mapBounded(
    keys,
    OWNER_LOOKUP_CONCURRENCY,
    (key) => groupCoordinator(broker, key, live, listener),
  );
  return results.map((r) =>
    r.status === "fulfilled"
      ? r.value
      : fail(ERROR_CODES.COORDINATOR_NOT_AVAILABLE, "Cannot look the coordinator up; retry")
  );
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
  async handle(req, ctx) {
    const keyType = ctx.apiVersion >= 1 ? req.keyType ?? 0 : COORDINATOR_KEY_TYPES.GROUP;
    // DESCRIBE on the group or transactional id (Kafka's authorizer), checked per key.
    const resource = keyType === COORDINATOR_KEY_TYPES.TRANSACTION ? RT.TRANSACTIONAL_ID : RT.GROUP;
    const denied = (key: string) =>
      (keyType === COORDINATOR_KEY_TYPES.GROUP || keyType === COORDINATOR_KEY_TYPES.TRANSACTION) &&
      !can(ctx, OP.DESCRIBE, resource, key);
    const deniedCode = keyType === COORDINATOR_KEY_TYPES.TRANSACTION
      ? ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
      : ERROR_CODES.GROUP_AUTHORIZATION_FAILED;
    if (ctx.apiVersion >= 4) {
      const keys = req.coordinatorKeys ?? [];
      const answers = (await lookup(ctx.broker, keyType, keys, ctx.security.listener)).map((a, i) =>
        denied(keys[i]) ? fail(deniedCode, "Not authorized") : a
      );
      return {
        throttleTimeMs: 0,
        coordinators: keys.map((key, i) => ({ key, ...answers[i] })),
      };
    }
    const [found1] = await lookup(ctx.broker, keyType, [req.key ?? ""], ctx.security.listener);
    const one = denied(req.key ?? "") ? fail(deniedCode, "Not authorized") : found1;
    return { throttleTimeMs: 0, ...one };
  },
});
