/**
 * DescribeUserScramCredentials (50), version 0 (KIP-554): each user's SCRAM mechanisms and
 * iterations (never a salt or key); all users when the list is null. Unknown users get
 * RESOURCE_NOT_FOUND, a user named twice DUPLICATE_RESOURCE. Super users only (see
 * super_users.ts): CLUSTER_AUTHORIZATION_FAILED for others.
 */
import {
  DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST,
  type DescribeUserScramCredentialsRequest,
} from "../protocol/generated/describe_user_scram_credentials_request.ts";
import {
  DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE,
  type DescribeUserScramCredentialsResponse,
  type DescribeUserScramCredentialsResult,
} from "../protocol/generated/describe_user_scram_credentials_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { isScramMechanism, SCRAM_MECHANISMS } from "../security/scram.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import { isSuperUser } from "./super_users.ts";
import { OPERATIONS } from "../security/acl.ts";

export const DESCRIBE_USER_SCRAM_CREDENTIALS_HANDLER = defineHandler<
  DescribeUserScramCredentialsRequest,
  DescribeUserScramCredentialsResponse
>({
  apiKey: 50,
  name: "DescribeUserScramCredentials",
  minVersion: 0,
  maxVersion: 0,
  request: DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST,
  response: DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE,
  async handle(req, ctx) {
    const top = (errorCode: number, errorMessage: string | null) => ({
      throttleTimeMs: 0,
      errorCode,
      errorMessage,
      results: [],
    });
    if (!isSuperUser(ctx, OPERATIONS.DESCRIBE)) {
      return top(ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED, "Only super users see credentials");
    }
    let all: Map<string, [string, number][]>;
    try {
      all = await ctx.broker.metadata.listScramCredentials();
    } catch (err) {
      return top(errorCodeFor(err, ctx.broker.logger, "DescribeUserScramCredentials"), null);
    }
    const info = (list: [string, number][]) =>
      list.filter(([m]) => isScramMechanism(m)).map(([m, iterations]) => ({
        mechanism: SCRAM_MECHANISMS[m as keyof typeof SCRAM_MECHANISMS].kafkaType,
        iterations,
      }));
    const names = req.users?.map((u) => u.name) ?? [...all.keys()].sort();
    const results: DescribeUserScramCredentialsResult[] = names.map((user, i) => {
      if (names.indexOf(user) !== i) {
        return {
          user,
          errorCode: ERROR_CODES.DUPLICATE_RESOURCE,
          errorMessage: `User "${user}" is named more than once`,
          credentialInfos: [],
        };
      }
      const list = all.get(user);
      return list
        ? { user, errorCode: ERROR_CODES.NONE, errorMessage: null, credentialInfos: info(list) }
        : {
          user,
          errorCode: ERROR_CODES.RESOURCE_NOT_FOUND,
          errorMessage: `Attempt to describe a user credential that does not exist: ${user}`,
          credentialInfos: [],
        };
    });
    return { throttleTimeMs: 0, errorCode: ERROR_CODES.NONE, errorMessage: null, results };
  },
});
