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
import { SASL_AUTHENTICATE_HANDLER } from "./sasl_authenticate.ts";
import { DESCRIBE_USER_SCRAM_CREDENTIALS_HANDLER } from "./describe_user_scram_credentials.ts";
import { ALTER_USER_SCRAM_CREDENTIALS_HANDLER } from "./alter_user_scram_credentials.ts";
import { DESCRIBE_CLIENT_QUOTAS_HANDLER } from "./describe_client_quotas.ts";
import { CREATE_ACLS_HANDLER, DELETE_ACLS_HANDLER, DESCRIBE_ACLS_HANDLER } from "./acls.ts";
import { CREATE_TOPICS_HANDLER } from "./create_topics.ts";
import { DELETE_TOPICS_HANDLER } from "./delete_topics.ts";
import { CREATE_PARTITIONS_HANDLER } from "./create_partitions.ts";
import { DESCRIBE_CONFIGS_HANDLER } from "./describe_configs.ts";
import { ALTER_CONFIGS_HANDLER } from "./alter_configs.ts";
import { INCREMENTAL_ALTER_CONFIGS_HANDLER } from "./incremental_alter_configs.ts";
import { OFFSET_FOR_LEADER_EPOCH_HANDLER } from "./offset_for_leader_epoch.ts";
import { DESCRIBE_CLUSTER_HANDLER } from "./describe_cluster.ts";
import { FIND_COORDINATOR_HANDLER } from "./find_coordinator.ts";
import { JOIN_GROUP_HANDLER } from "./join_group.ts";
import { SYNC_GROUP_HANDLER } from "./sync_group.ts";
import { HEARTBEAT_HANDLER } from "./heartbeat.ts";
import { LEAVE_GROUP_HANDLER } from "./leave_group.ts";
import { OFFSET_COMMIT_HANDLER } from "./offset_commit.ts";
import { OFFSET_FETCH_HANDLER } from "./offset_fetch.ts";
import { DESCRIBE_GROUPS_HANDLER } from "./describe_groups.ts";
import { LIST_GROUPS_HANDLER } from "./list_groups.ts";
import { DELETE_GROUPS_HANDLER } from "./delete_groups.ts";
import { OFFSET_DELETE_HANDLER } from "./offset_delete.ts";
import { INIT_PRODUCER_ID_HANDLER } from "./init_producer_id.ts";
import { DESCRIBE_LOG_DIRS_HANDLER } from "./describe_log_dirs.ts";
import { DELETE_RECORDS_HANDLER } from "./delete_records.ts";
import { DESCRIBE_TOPIC_PARTITIONS_HANDLER } from "./describe_topic_partitions.ts";
import { ADD_PARTITIONS_TO_TXN_HANDLER } from "./add_partitions_to_txn.ts";
import { ADD_OFFSETS_TO_TXN_HANDLER } from "./add_offsets_to_txn.ts";
import { END_TXN_HANDLER } from "./end_txn.ts";
import { WRITE_TXN_MARKERS_HANDLER } from "./write_txn_markers.ts";
import { TXN_OFFSET_COMMIT_HANDLER } from "./txn_offset_commit.ts";
import { DESCRIBE_TRANSACTIONS_HANDLER } from "./describe_transactions.ts";
import { LIST_TRANSACTIONS_HANDLER } from "./list_transactions.ts";
import { DESCRIBE_PRODUCERS_HANDLER } from "./describe_producers.ts";
import { CONSUMER_GROUP_HEARTBEAT_HANDLER } from "./consumer_group_heartbeat.ts";
import { CONSUMER_GROUP_DESCRIBE_HANDLER } from "./consumer_group_describe.ts";

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
  add(DELETE_RECORDS_HANDLER);
  add(DESCRIBE_TOPIC_PARTITIONS_HANDLER);
  add(METADATA_HANDLER);
  add(SASL_HANDSHAKE_HANDLER);
  add(SASL_AUTHENTICATE_HANDLER);
  add(DESCRIBE_USER_SCRAM_CREDENTIALS_HANDLER);
  add(ALTER_USER_SCRAM_CREDENTIALS_HANDLER);
  add(DESCRIBE_CLIENT_QUOTAS_HANDLER);
  add(CREATE_ACLS_HANDLER);
  add(DESCRIBE_ACLS_HANDLER);
  add(DELETE_ACLS_HANDLER);
  add(apiVersionsHandler(() => table));
  add(CREATE_TOPICS_HANDLER);
  add(DELETE_TOPICS_HANDLER);
  add(CREATE_PARTITIONS_HANDLER);
  add(DESCRIBE_CONFIGS_HANDLER);
  add(ALTER_CONFIGS_HANDLER);
  add(INCREMENTAL_ALTER_CONFIGS_HANDLER);
  add(OFFSET_FOR_LEADER_EPOCH_HANDLER);
  add(DESCRIBE_CLUSTER_HANDLER);
  add(FIND_COORDINATOR_HANDLER);
  add(JOIN_GROUP_HANDLER);
  add(SYNC_GROUP_HANDLER);
  add(HEARTBEAT_HANDLER);
  add(LEAVE_GROUP_HANDLER);
  add(OFFSET_COMMIT_HANDLER);
  add(OFFSET_FETCH_HANDLER);
  add(DESCRIBE_GROUPS_HANDLER);
  add(LIST_GROUPS_HANDLER);
  add(DELETE_GROUPS_HANDLER);
  add(OFFSET_DELETE_HANDLER);
  add(INIT_PRODUCER_ID_HANDLER);
  add(DESCRIBE_LOG_DIRS_HANDLER);
  add(ADD_PARTITIONS_TO_TXN_HANDLER);
  add(ADD_OFFSETS_TO_TXN_HANDLER);
  add(END_TXN_HANDLER);
  add(WRITE_TXN_MARKERS_HANDLER);
  add(TXN_OFFSET_COMMIT_HANDLER);
  add(DESCRIBE_TRANSACTIONS_HANDLER);
  add(LIST_TRANSACTIONS_HANDLER);
  add(DESCRIBE_PRODUCERS_HANDLER);
  add(CONSUMER_GROUP_HEARTBEAT_HANDLER);
  add(CONSUMER_GROUP_DESCRIBE_HANDLER);
  return table;
}

export const HANDLERS: ReadonlyMap<number, ApiHandler> = buildTable();
