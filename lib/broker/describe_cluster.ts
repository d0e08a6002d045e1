/**
 * DescribeCluster (60), versions 0-1 (KIP-700): the cluster id, the
 * controller and the brokers, which Kafka 3.x/4.x admin clients (and so
 * Kafka's command-line tools) ask for instead of Metadata. This broker
 * answers for itself, as it does in Metadata; only broker endpoints exist
 * (endpoint type 1), a request for controller endpoints gets
 * UNSUPPORTED_ENDPOINT_TYPE. Cluster authorized operations, when asked for,
 * are every cluster operation (no authorizer; authorized_operations.ts).
 */
import {
  DESCRIBE_CLUSTER_REQUEST,
  type DescribeClusterRequest,
} from "../protocol/generated/describe_cluster_request.ts";
import {
  DESCRIBE_CLUSTER_RESPONSE,
  type DescribeClusterResponse,
} from "../protocol/generated/describe_cluster_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { endpointOf } from "./partition_leaders.ts";
import { authorizedOperations, CLUSTER_OPERATIONS } from "./authorized_operations.ts";

const BROKER_ENDPOINTS = 1;

export const DESCRIBE_CLUSTER_HANDLER = defineHandler<
  DescribeClusterRequest,
  DescribeClusterResponse
>({
  apiKey: 60,
  name: "DescribeCluster",
  minVersion: 0,
  maxVersion: 1,
  request: DESCRIBE_CLUSTER_REQUEST,
  response: DESCRIBE_CLUSTER_RESPONSE,
  handle(req, ctx) {
    const broker = ctx.broker;
    const s = broker.settings;
    const endpointType = req.endpointType ?? BROKER_ENDPOINTS;
    const base = {
      throttleTimeMs: 0,
      endpointType,
      clusterId: broker.clusterId,
      controllerId: s.nodeId,
      clusterAuthorizedOperations: authorizedOperations(
        req.includeClusterAuthorizedOperations,
        CLUSTER_OPERATIONS,
      ),
    };
    if (!can(ctx, OP.DESCRIBE, RT.CLUSTER, "kafka-cluster")) {
      return {
        ...base,
        errorCode: ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED,
        errorMessage: "Not authorized to describe the cluster",
        brokers: [],
      };
    }
    if (endpointType !== BROKER_ENDPOINTS) {
      return {
        ...base,
        errorCode: ERROR_CODES.UNSUPPORTED_ENDPOINT_TYPE,
        errorMessage: `Endpoint type ${endpointType} is not served; ask for brokers (1)`,
        controllerId: -1,
        brokers: [],
      };
    }
    return {
      ...base,
      errorCode: ERROR_CODES.NONE,
      errorMessage: null,
      brokers: [{ brokerId: s.nodeId, ...endpointOf(s, ctx.security.listener), rack: s.rack }],
    };
  },
});
