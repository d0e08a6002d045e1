/**
 * AlterUserScramCredentials (51), version 0 (KIP-554): upserts (the client sends the salt,
 * iterations and salted password, never the password) and deletions of SCRAM credentials, kept
 * in the metadata store so every broker of the cluster logs users in with them. Errors per user,
 * as Kafka answers: UNSUPPORTED_SASL_MECHANISM, UNACCEPTABLE_CREDENTIAL (iterations outside
 * 4096-16384, empty salt or password), RESOURCE_NOT_FOUND (deleting what does not exist),
 * DUPLICATE_RESOURCE (a user and mechanism twice). Super users only (super_users.ts). The brokers'
 * own user (inter_broker.ts) is refused with UNACCEPTABLE_CREDENTIAL.
 */
import {
  ALTER_USER_SCRAM_CREDENTIALS_REQUEST,
  type AlterUserScramCredentialsRequest,
} from "../protocol/generated/alter_user_scram_credentials_request.ts";
import {
  ALTER_USER_SCRAM_CREDENTIALS_RESPONSE,
  type AlterUserScramCredentialsResponse,
} from "../protocol/generated/alter_user_scram_credentials_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  credentialFromSaltedPassword,
  SCRAM_ITERATIONS_MAX,
  SCRAM_ITERATIONS_MIN,
  SCRAM_MECHANISMS,
  type ScramMechanism,
} from "../security/scram.ts";
import { defineHandler } from "./handler.ts";
import { INTER_BROKER_USER } from "./inter_broker.ts";
import { errorCodeFor } from "./errors.ts";
import { isSuperUser } from "./super_users.ts";

function mechanismName(type: number): ScramMechanism | null {
  for (const [name, m] of Object.entries(SCRAM_MECHANISMS)) {
    if (m.kafkaType === type) return name as ScramMechanism;
  }
  return null;
}

export const ALTER_USER_SCRAM_CREDENTIALS_HANDLER = defineHandler<
  AlterUserScramCredentialsRequest,
  AlterUserScramCredentialsResponse
>({
  apiKey: 51,
  name: "AlterUserScramCredentials",
  minVersion: 0,
  maxVersion: 0,
  request: ALTER_USER_SCRAM_CREDENTIALS_REQUEST,
  response: ALTER_USER_SCRAM_CREDENTIALS_RESPONSE,
  async handle(req, ctx) {
    const results = new Map<string, { errorCode: number; errorMessage: string | null }>();
    const fail = (user: string, errorCode: number, errorMessage: string) => {
      if (!results.has(user) || results.get(user)!.errorCode === ERROR_CODES.NONE) {
        results.set(user, { errorCode, errorMessage });
      }
    };
    const users = [...new Set([...req.deletions, ...req.upsertions].map((x) => x.name))];
    const hasFailed = (user: string) =>
      (results.get(user)?.errorCode ?? ERROR_CODES.NONE) !== ERROR_CODES.NONE;
    if (!isSuperUser(ctx)) {
      return {
        throttleTimeMs: 0,
        results: users.map((user) => ({
          user,
          errorCode: ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED,
          errorMessage: "Only super users change credentials",
        })),
      };
    }
    const seen = new Set<string>();
    for (const x of [...req.deletions, ...req.upsertions]) {
      if (x.name === INTER_BROKER_USER) {
        fail(
          x.name,
          ERROR_CODES.UNACCEPTABLE_CREDENTIAL,
          "Reserved for brokers calling each other",
        );
      }
      const key = `${x.name}\u0000${x.mechanism}`;
      if (seen.has(key)) fail(x.name, ERROR_CODES.DUPLICATE_RESOURCE, "A user and mechanism twice");
      seen.add(key);
    }
    const metadata = ctx.broker.metadata;
    try {
      for (const d of req.deletions) {
        const mechanism = mechanismName(d.mechanism);
        if (!mechanism) {
          fail(
            d.name,
            ERROR_CODES.UNSUPPORTED_SASL_MECHANISM,
            `Unknown SCRAM mechanism ${d.mechanism}`,
          );
        } else if (d.name === "") {
          fail(d.name, ERROR_CODES.UNACCEPTABLE_CREDENTIAL, "Empty user name");
        } else if (
          !hasFailed(d.name) && !(await metadata.deleteScramCredential(d.name, mechanism))
        ) {
          fail(
            d.name,
            ERROR_CODES.RESOURCE_NOT_FOUND,
            `No ${mechanism} credential for "${d.name}"`,
          );
        }
        if (!results.has(d.name)) {
          results.set(d.name, { errorCode: ERROR_CODES.NONE, errorMessage: null });
        }
      }
      for (const u of req.upsertions) {
        const mechanism = mechanismName(u.mechanism);
        if (!mechanism) {
          fail(
            u.name,
            ERROR_CODES.UNSUPPORTED_SASL_MECHANISM,
            `Unknown SCRAM mechanism ${u.mechanism}`,
          );
        } else if (
          u.name === "" || u.salt.length === 0 || u.saltedPassword.length === 0 ||
          u.iterations < SCRAM_ITERATIONS_MIN || u.iterations > SCRAM_ITERATIONS_MAX
        ) {
          fail(
            u.name,
            ERROR_CODES.UNACCEPTABLE_CREDENTIAL,
            `A credential needs a user, salt and salted password, and ${SCRAM_ITERATIONS_MIN}-` +
              `${SCRAM_ITERATIONS_MAX} iterations (got ${u.iterations})`,
          );
        } else if (!hasFailed(u.name)) {
          // (Once a change of a user failed, nothing more of it is applied.)
          await metadata.putScramCredential(
            u.name,
            credentialFromSaltedPassword(mechanism, u.saltedPassword, u.salt, u.iterations),
          );
        }
        if (!results.has(u.name)) {
          results.set(u.name, { errorCode: ERROR_CODES.NONE, errorMessage: null });
        }
      }
    } catch (err) {
      const code = errorCodeFor(err, ctx.broker.logger, "AlterUserScramCredentials");
      for (const user of users) fail(user, code, "The metadata store failed; retry");
    }
    ctx.broker.logger.info("SCRAM credentials changed", {
      by: ctx.security.principal,
      users: users.join(","),
    });
    return {
      throttleTimeMs: 0,
      results: users.map((user) => ({
        user,
        ...(results.get(user) ?? { errorCode: ERROR_CODES.NONE, errorMessage: null }),
      })),
    };
  },
});
