/**
 * The group coordinator: owns the consumer groups this broker coordinates.
 * It loads a group from the MetadataStore when it takes the group over,
 * feeds requests and timer ticks to the pure state machine
 * (group_state.ts), answers held requests when the machine says so, writes
 * group records on state changes (never on heartbeats) and keeps committed
 * offsets in the MetadataStore.
 *
 * Owns: the in-memory groups, their timers on the injected clock, the
 * per-group order of record writes, and the limits on groups and members.
 * Store failures become retriable Kafka codes (COORDINATOR_NOT_AVAILABLE;
 * NOT_COORDINATOR when another writer changed the group record, which means
 * this broker no longer owns it).
 *
 * Ownership among brokers sharing one store (with `ownership`): before
 * loading or creating a group the coordinator takes its owner key
 * (`ClusterMetadata.acquireGroup`, on the broker's session lease, with a new
 * epoch). While another live broker holds the key, requests for the group
 * get NOT_COORDINATOR (clients look the coordinator up again). Record writes
 * and offset commits compare the epoch, so a broker whose lease expired
 * cannot write after another took over; a group held on a lease that is no
 * longer the broker's is dropped and loaded again on the next request.
 *
 * Must not import lib/broker, lib/server or lib/cli, and must not touch sockets.
 */
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Metrics } from "../util/metrics.ts";
import type { ClusterMetadata, OffsetCommitEntry } from "../metadata/cluster_metadata.ts";
import { MetadataStoreError } from "../metadata/metadata_store.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  describeGroup,
  type Group,
  GROUP_STATES,
  type GroupConfig,
  type GroupDescription,
  type GroupEffect,
  type GroupEvent,
  groupFromRecord,
  type GroupNote,
  type GroupProtocol,
  type GroupRecord,
  type GroupStateName,
  joinError,
  type JoinOutcome,
  type LeaveMemberOutcome,
  type MemberIdentity,
  newGroup,
  nextDeadline,
  step,
  syncError,
  type SyncOutcome,
} from "./group_state.ts";
import { decodeGroupRecord, encodeGroupRecord, GroupRecordError } from "./group_record.ts";
import { CONSUMER_PROTOCOL_TYPE, subscribedTopics } from "./subscribed_topics.ts";

export interface GroupCoordinatorConfig {
  /** Kafka's group.initial.rebalance.delay.ms: how long a new group waits for more members. */
  initialRebalanceDelayMs: number;
  /** Kafka's group.min.session.timeout.ms. */
  minSessionTimeoutMs: number;
  /** Kafka's group.max.session.timeout.ms. */
  maxSessionTimeoutMs: number;
  /** How long a new member's first JoinGroup may wait (Kafka: 5 minutes). */
  newMemberJoinTimeoutMs: number;
  /** Named limit: members plus pending (MEMBER_ID_REQUIRED) members of one group. */
  maxMembersPerGroup: number;
  /** Named limit: groups held in memory; idle empty groups are evicted first. */
  maxGroups: number;
  /** Kafka's offset.metadata.max.bytes (characters of commit metadata). */
  offsetMetadataMaxBytes: number;
}

export const DEFAULT_GROUP_COORDINATOR_CONFIG: Readonly<GroupCoordinatorConfig> = Object.freeze({
  initialRebalanceDelayMs: 3_000,
  minSessionTimeoutMs: 6_000,
  maxSessionTimeoutMs: 1_800_000,
  newMemberJoinTimeoutMs: 300_000,
  maxMembersPerGroup: 1_000,
  maxGroups: 10_000,
  offsetMetadataMaxBytes: 4_096,
});

/** Attempts to get a group that was dropped (deleted, unloaded) while we waited for it. */
const GROUP_ACCESS_ATTEMPTS_MAX = 4;
/** Longest timer delay (setTimeout's limit); a later deadline is re-armed when this fires. */
const TIMER_DELAY_MAX_MS = 2 ** 31 - 1;
/** Group records ListGroups reads from the store at once. */
const LIST_READS_CONCURRENCY = 16;
/**
 * How long OffsetFetch keeps trying an unreachable metadata store (an etcd restart) before it
 * answers COORDINATOR_LOAD_IN_PROGRESS, and the pause between tries. librdkafka leaves a
 * partition unfetched for good after most OffsetFetch errors (COORDINATOR_NOT_AVAILABLE among
 * them: it only looks the coordinator up again), so a short outage is waited out here.
 */
export const OFFSET_FETCH_STORE_WAIT_MS = 15_000;
const OFFSET_FETCH_RETRY_MS = 250;

export interface JoinGroupInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: GroupProtocol[];
  requireKnownMemberId: boolean;
  supportsSkipAssignment: boolean;
}

export interface SyncGroupInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  assignments: { memberId: string; assignment: Uint8Array }[];
}

export interface HeartbeatInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  generationId: number;
}

export interface LeaveGroupResult {
  errorCode: number;
  members: LeaveMemberOutcome[];
}

export interface CommitOffset {
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
}

export interface OffsetCommitInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  generationId: number;
  offsets: CommitOffset[];
}

export interface OffsetFetchResult {
  errorCode: number;
  /** Every committed offset of the group, sorted by topic then partition. */
  offsets: OffsetCommitEntry[];
}

export interface OffsetDeleteResult {
  /** A group-level error; NONE when each partition has its own code. */
  errorCode: number;
  /** One code per requested partition, in request order (empty with a group-level error). */
  partitionErrors: number[];
}

export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: GroupStateName;
}

export interface ListGroupsResult {
  errorCode: number;
  groups: GroupListing[];
}

export interface DescribeGroupResult {
  errorCode: number;
  group: GroupDescription;
}

/**
 * The broker session the coordinator hangs group owner keys on (the log
 * manager's lease, lib/log/log_manager.ts).
 */
export interface GroupOwnershipSession {
  /** This broker's id, written in the owner keys. */
  readonly brokerId: number;
  /** The current session lease id; 0 while there is none. */
  readonly leaseId: number;
  /** The session lease id, granted again when it was lost; rejects when that fails. */
  sessionLease(): Promise<number>;
}

/** A group owner key this coordinator holds. */
interface Ownership {
  epoch: number;
  leaseId: number;
}

/** A failure with the Kafka code the request gets. */
export class CoordinatorError extends Error {
  override name = "CoordinatorError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

type ResponseEffect = Exclude<GroupEffect, { type: "persist" } | { type: "note" }>;

interface Waiter {
  resolve(effect: ResponseEffect): void;
  reject(err: Error): void;
}

interface GroupEntry {
  group: Group;
  /** modRevision of the stored group record; 0 when none is stored. */
  revision: number;
  live: boolean;
  timer: TimerHandle | null;
  timerAt: number;
  /** Record writes, in order. */
  writes: Promise<void>;
  writesPending: number;
  /** Offset commits in flight (a deletion waits for them). */
  commits: Set<Promise<unknown>>;
  waiters: Map<number, Waiter>;
  /** The owner key held for the group; null without ownership (one broker). */
  owner: Ownership | null;
}

interface Loaded {
  entry: GroupEntry | null;
  owner: Ownership | null;
}

/**
 * The client host as Kafka reports it in DescribeGroups: the address without
 * its port, with a leading slash (Java's InetAddress.toString).
 */
export function kafkaClientHost(clientAddress: string): string {
  const colon = clientAddress.lastIndexOf(":");
  const host = colon > 0 ? clientAddress.slice(0, colon) : clientAddress;
  return `/${host.replace(/^\[|\]$/g, "")}`;
}

export function isValidGroupId(groupId: string | null | undefined): groupId is string {
  return typeof groupId === "string" && groupId.length > 0;
}

export class GroupCoordinator {
  readonly #metadata: ClusterMetadata;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: Metrics | null;
  readonly #config: GroupCoordinatorConfig;
  readonly #stateConfig: GroupConfig;
  readonly #groups = new Map<string, GroupEntry>();
  readonly #ownership: GroupOwnershipSession | null;
  readonly #loading = new Map<string, Promise<Loaded>>();
  readonly #deleting = new Map<string, Promise<void>>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #nextRequestId = 1;
  #stopped = false;
  /** OffsetFetch requests waiting for the store to answer again (woken by `stop`). */
  readonly #pauses = new Set<() => void>();

  constructor(deps: {
    metadata: ClusterMetadata;
    clock: Clock;
    logger: Logger;
    metrics?: Metrics;
    config?: Partial<GroupCoordinatorConfig>;
    /** Owner keys for groups, for brokers sharing one store; none: every group is ours. */
    ownership?: GroupOwnershipSession;
  }) {
    this.#metadata = deps.metadata;
    this.#ownership = deps.ownership ?? null;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics ?? null;
    this.#config = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, ...deps.config };
    this.#stateConfig = {
      initialRebalanceDelayMs: this.#config.initialRebalanceDelayMs,
      newMemberJoinTimeoutMs: this.#config.newMemberJoinTimeoutMs,
      maxMembers: this.#config.maxMembersPerGroup,
    };
  }

  get config(): Readonly<GroupCoordinatorConfig> {
    return this.#config;
  }

  /** False once stopped: requests get NOT_COORDINATOR. */
  get active(): boolean {
    return !this.#stopped;
  }

  /** Groups held in memory. */
  get loadedGroups(): number {
    return this.#groups.size;
  }

  /**
   * Gives every group up: held JoinGroup/SyncGroup requests are answered with
   * NOT_COORDINATOR (clients look the coordinator up again), timers stop and
   * record writes in flight finish.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const wake of [...this.#pauses]) wake();
    for (const entry of [...this.#groups.values()]) {
      this.#applySafely(entry, { type: "unload", errorCode: ERROR_CODES.NOT_COORDINATOR });
    }
    await Promise.allSettled([...this.#loading.values(), ...this.#deleting.values()]);
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Hands a group over (to another broker, later): held requests get
   * NOT_COORDINATOR and the in-memory state is dropped; the next request
   * loads it from the store again.
   */
  unloadGroup(groupId: string): void {
    const entry = this.#groups.get(groupId);
    if (entry) {
      this.#applySafely(entry, { type: "unload", errorCode: ERROR_CODES.NOT_COORDINATOR });
    }
  }

  // ---- membership ---------------------------------------------------------

  async join(input: JoinGroupInput): Promise<JoinOutcome> {
    const fail = (code: number) => joinError(input.memberId, code);
    if (this.#stopped) return fail(ERROR_CODES.NOT_COORDINATOR);
    if (!isValidGroupId(input.groupId)) return fail(ERROR_CODES.INVALID_GROUP_ID);
    if (
      input.sessionTimeoutMs < this.#config.minSessionTimeoutMs ||
      input.sessionTimeoutMs > this.#config.maxSessionTimeoutMs
    ) {
      return fail(ERROR_CODES.INVALID_SESSION_TIMEOUT);
    }
    try {
      // Only a member without an id may create the group (Kafka's getOrMaybeCreateGroup).
      const entry = await this.#entry(input.groupId, input.memberId === "");
      if (!entry) return fail(ERROR_CODES.UNKNOWN_MEMBER_ID);
      const effect = await this.#request(entry, (requestId) => ({
        type: "join",
        requestId,
        memberId: input.memberId,
        groupInstanceId: input.groupInstanceId,
        clientId: input.clientId,
        clientHost: input.clientHost,
        sessionTimeoutMs: input.sessionTimeoutMs,
        rebalanceTimeoutMs: input.rebalanceTimeoutMs,
        protocolType: input.protocolType,
        protocols: input.protocols,
        requireKnownMemberId: input.requireKnownMemberId,
        supportsSkipAssignment: input.supportsSkipAssignment,
        newMemberId: `${input.groupInstanceId ?? input.clientId}-${crypto.randomUUID()}`,
      }));
      if (effect.type !== "join-response") throw new Error(`JoinGroup answered by ${effect.type}`);
      return effect.response;
    } catch (err) {
      return fail(this.#codeFor(err, "JoinGroup"));
    }
  }

  async sync(input: SyncGroupInput): Promise<SyncOutcome> {
    if (this.#stopped) return syncError(ERROR_CODES.NOT_COORDINATOR);
    if (!isValidGroupId(input.groupId)) return syncError(ERROR_CODES.INVALID_GROUP_ID);
    try {
      const entry = await this.#entry(input.groupId, false);
      if (!entry) return syncError(ERROR_CODES.UNKNOWN_MEMBER_ID);
      const effect = await this.#request(
        entry,
        (requestId) => ({ type: "sync", requestId, ...input }),
      );
      if (effect.type !== "sync-response") throw new Error(`SyncGroup answered by ${effect.type}`);
      return effect.response;
    } catch (err) {
      return syncError(this.#codeFor(err, "SyncGroup"));
    }
  }

  /** Heartbeats touch memory only: they never write to the store. */
  async heartbeat(input: HeartbeatInput): Promise<number> {
    if (this.#stopped) return ERROR_CODES.NOT_COORDINATOR;
    if (!isValidGroupId(input.groupId)) return ERROR_CODES.INVALID_GROUP_ID;
    try {
      const entry = await this.#entry(input.groupId, false);
      if (!entry) return ERROR_CODES.UNKNOWN_MEMBER_ID;
      const effect = await this.#request(entry, (requestId) => ({
        type: "heartbeat",
        requestId,
        ...input,
      }));
      if (effect.type !== "heartbeat-response") {
        throw new Error(`Heartbeat answered by ${effect.type}`);
      }
      return effect.errorCode;
    } catch (err) {
      return this.#codeFor(err, "Heartbeat");
    }
  }

  async leave(groupId: string, members: MemberIdentity[]): Promise<LeaveGroupResult> {
    const fail = (code: number) => ({ errorCode: code, members: [] });
    if (this.#stopped) return fail(ERROR_CODES.NOT_COORDINATOR);
    if (!isValidGroupId(groupId)) return fail(ERROR_CODES.INVALID_GROUP_ID);
    try {
      const entry = await this.#entry(groupId, false);
      if (!entry) {
        return {
          errorCode: ERROR_CODES.NONE,
          members: members.map((m) => ({ ...m, errorCode: ERROR_CODES.UNKNOWN_MEMBER_ID })),
        };
      }
      const effect = await this.#request(entry, (requestId) => ({
        type: "leave",
        requestId,
        members,
      }));
      if (effect.type !== "leave-response") {
        throw new Error(`LeaveGroup answered by ${effect.type}`);
      }
      return { errorCode: effect.errorCode, members: [...effect.members] };
    } catch (err) {
      return fail(this.#codeFor(err, "LeaveGroup"));
    }
  }

  // ---- offsets --------------------------------------------------------------

  /**
   * Validates the committer (member and generation, or a standalone commit
   * with generation -1 to an empty group) and stores the offsets. Returns one
   * error code per entry of `input.offsets`.
   */
  async commitOffsets(input: OffsetCommitInput): Promise<number[]> {
    const codes = input.offsets.map((o) =>
      o.metadata !== null && o.metadata.length > this.#config.offsetMetadataMaxBytes
        ? ERROR_CODES.OFFSET_METADATA_TOO_LARGE
        : ERROR_CODES.NONE
    );
    const fail = (code: number) => codes.map((c) => (c === ERROR_CODES.NONE ? code : c));
    if (this.#stopped) return fail(ERROR_CODES.NOT_COORDINATOR);
    if (!isValidGroupId(input.groupId)) return fail(ERROR_CODES.INVALID_GROUP_ID);
    try {
      const entry = await this.#entry(input.groupId, input.generationId < 0);
      // A commit with a generation for a group we do not know is from an older generation.
      if (!entry) return fail(ERROR_CODES.ILLEGAL_GENERATION);
      const effect = await this.#request(entry, (requestId) => ({
        type: "commit",
        requestId,
        memberId: input.memberId,
        groupInstanceId: input.groupInstanceId,
        generationId: input.generationId,
      }));
      if (effect.type !== "commit-checked") throw new Error(`Commit answered by ${effect.type}`);
      if (effect.errorCode !== ERROR_CODES.NONE) return fail(effect.errorCode);
      const now = this.#clock.now();
      const entries: OffsetCommitEntry[] = input.offsets
        .filter((_, i) => codes[i] === ERROR_CODES.NONE)
        .map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: o.offset,
          leaderEpoch: o.leaderEpoch,
          metadata: o.metadata,
          commitTimestampMs: now,
        }));
      if (entries.length === 0) return codes;
      const commit = entry.owner
        ? this.#metadata.commitOffsetsAsOwner(input.groupId, entries, entry.owner.epoch)
        : this.#metadata.commitOffsets(input.groupId, entries);
      entry.commits.add(commit);
      this.#track(commit);
      let outcome;
      try {
        outcome = await commit;
      } finally {
        entry.commits.delete(commit);
      }
      if (outcome === "fenced") {
        this.#giveUp(entry, "Another broker took the group over; offsets not committed");
        return fail(ERROR_CODES.NOT_COORDINATOR);
      }
      this.#metrics?.inc(
        "kafscale_group_offset_commits_total",
        "Offsets committed",
        {},
        entries.length,
      );
      return codes;
    } catch (err) {
      return fail(this.#codeFor(err, "OffsetCommit"));
    }
  }

  /**
   * Checks a transactional committer (TxnOffsetCommit, KIP-447) as `commitOffsets` checks a
   * member, storing nothing: the offsets wait in the transaction until it commits.
   */
  async checkCommitter(
    input: Pick<OffsetCommitInput, "groupId" | "memberId" | "groupInstanceId" | "generationId">,
  ): Promise<number> {
    if (this.#stopped) return ERROR_CODES.NOT_COORDINATOR;
    if (!isValidGroupId(input.groupId)) return ERROR_CODES.INVALID_GROUP_ID;
    try {
      const entry = await this.#entry(input.groupId, input.generationId < 0);
      if (!entry) return ERROR_CODES.ILLEGAL_GENERATION;
      const effect = await this.#request(entry, (requestId) => ({
        type: "commit",
        requestId,
        memberId: input.memberId,
        groupInstanceId: input.groupInstanceId,
        generationId: input.generationId,
      }));
      if (effect.type !== "commit-checked") throw new Error(`Commit answered by ${effect.type}`);
      return effect.errorCode;
    } catch (err) {
      return this.#codeFor(err, "TxnOffsetCommit");
    }
  }

  /**
   * Takes (or confirms) coordination of `groupId` for the consumer protocol (KIP-848), which
   * keeps its members elsewhere: NOT_COORDINATOR when another broker holds it; `classicMembers`
   * counts the members of a classic group of that id (a protocol conflict when not 0).
   */
  async claim(
    groupId: string,
  ): Promise<{ errorCode: number; classicMembers: number; ownerEpoch: number | null }> {
    const fail = (errorCode: number) => ({ errorCode, classicMembers: 0, ownerEpoch: null });
    if (this.#stopped) return fail(ERROR_CODES.NOT_COORDINATOR);
    if (!isValidGroupId(groupId)) return fail(ERROR_CODES.INVALID_GROUP_ID);
    try {
      const entry = await this.#entry(groupId, true);
      return {
        errorCode: ERROR_CODES.NONE,
        classicMembers: entry?.group.members.size ?? 0,
        ownerEpoch: entry?.owner?.epoch ?? null,
      };
    } catch (err) {
      return fail(this.#codeFor(err, "ConsumerGroupHeartbeat"));
    }
  }

  /**
   * The epoch of the group's owner key as this coordinator holds it now: null without
   * ownership (one broker), undefined when the group is not loaded or its lease was lost.
   */
  ownerEpochOf(groupId: string): number | null | undefined {
    const entry = this.#groups.get(groupId);
    if (!entry?.live || !this.#ownsStill(entry)) return undefined;
    return entry.owner?.epoch ?? null;
  }

  /**
   * The group's committed offsets, read from the store. While the store cannot be reached they
   * are read again every OFFSET_FETCH_RETRY_MS for up to OFFSET_FETCH_STORE_WAIT_MS (less when
   * the coordinator stops); then the answer is COORDINATOR_LOAD_IN_PROGRESS, which clients
   * retry (librdkafka gives up on COORDINATOR_NOT_AVAILABLE here).
   */
  async fetchOffsets(groupId: string): Promise<OffsetFetchResult> {
    if (this.#stopped) return { errorCode: ERROR_CODES.NOT_COORDINATOR, offsets: [] };
    if (!isValidGroupId(groupId)) return { errorCode: ERROR_CODES.INVALID_GROUP_ID, offsets: [] };
    const deadline = this.#clock.monotonic() + OFFSET_FETCH_STORE_WAIT_MS;
    for (let attempt = 1;; attempt++) {
      try {
        await this.#deleting.get(groupId);
        return { errorCode: ERROR_CODES.NONE, offsets: await this.#metadata.fetchOffsets(groupId) };
      } catch (err) {
        const waiting = err instanceof MetadataStoreError && !this.#stopped &&
          this.#clock.monotonic() + OFFSET_FETCH_RETRY_MS < deadline;
        if (!waiting) {
          if (!(err instanceof MetadataStoreError)) {
            return { errorCode: this.#codeFor(err, "OffsetFetch"), offsets: [] };
          }
          this.#logger.warn("OffsetFetch failed: metadata store unavailable", {
            group: groupId,
            attempts: attempt,
            err: err.message,
          });
          return {
            errorCode: this.#stopped
              ? ERROR_CODES.NOT_COORDINATOR
              : ERROR_CODES.COORDINATOR_LOAD_IN_PROGRESS,
            offsets: [],
          };
        }
        await this.#pause(OFFSET_FETCH_RETRY_MS);
      }
    }
  }

  /** Resolves after `ms`, or at once when the coordinator stops. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        timer.cancel();
        this.#pauses.delete(wake);
        resolve();
      };
      const timer = this.#clock.setTimeout(wake, ms);
      this.#pauses.add(wake);
    });
  }

  /**
   * OffsetDelete (KIP-496), by Kafka's rules: an Empty group loses the offsets of every named
   * partition; a consumer group with members only those of topics it is not subscribed to (the
   * others get GROUP_SUBSCRIBED_TO_TOPIC; when the subscriptions are not known, every topic counts
   * as subscribed); any other group with members gets NON_EMPTY_GROUP, and an unknown or Dead one
   * GROUP_ID_NOT_FOUND. Offset commits in flight finish first, so none comes back after the delete.
   */
  async deleteOffsets(
    groupId: string,
    partitions: { topic: string; partition: number }[],
  ): Promise<OffsetDeleteResult> {
    const groupError = (errorCode: number) => ({ errorCode, partitionErrors: [] });
    if (this.#stopped) return groupError(ERROR_CODES.NOT_COORDINATOR);
    if (!isValidGroupId(groupId)) return groupError(ERROR_CODES.INVALID_GROUP_ID);
    try {
      const entry = await this.#entry(groupId, false);
      if (!entry || entry.group.state === GROUP_STATES.DEAD) {
        return groupError(ERROR_CODES.GROUP_ID_NOT_FOUND);
      }
      const group = entry.group;
      let subscribed: (topic: string) => boolean = () => false;
      if (group.state !== GROUP_STATES.EMPTY) {
        if (group.protocolType !== CONSUMER_PROTOCOL_TYPE) {
          return groupError(ERROR_CODES.NON_EMPTY_GROUP);
        }
        const topics = subscribedTopics(group);
        subscribed = (topic) => topics === null || topics.has(topic);
      }
      const partitionErrors = partitions.map((p) =>
        subscribed(p.topic) ? ERROR_CODES.GROUP_SUBSCRIBED_TO_TOPIC : ERROR_CODES.NONE
      );
      const eligible = partitions.filter((_, i) => partitionErrors[i] === ERROR_CODES.NONE);
      if (eligible.length > 0) {
        await Promise.allSettled([...entry.commits]);
        await this.#metadata.deleteGroupOffsets(groupId, eligible);
        this.#logger.info("Deleted committed offsets", {
          group: groupId,
          partitions: eligible.length,
        });
      }
      return { errorCode: ERROR_CODES.NONE, partitionErrors };
    } catch (err) {
      return groupError(this.#codeFor(err, "OffsetDelete"));
    }
  }

  // ---- administration ----------------------------------------------------------

  /** Kafka answers an unknown group with state Dead and no error (DescribeGroups v0-5). */
  async describeGroup(groupId: string): Promise<DescribeGroupResult> {
    const dead: GroupDescription = {
      groupId,
      state: GROUP_STATES.DEAD,
      protocolType: "",
      protocolData: "",
      members: [],
    };
    if (this.#stopped) return { errorCode: ERROR_CODES.NOT_COORDINATOR, group: dead };
    if (!isValidGroupId(groupId)) return { errorCode: ERROR_CODES.INVALID_GROUP_ID, group: dead };
    try {
      const entry = await this.#entry(groupId, false);
      return { errorCode: ERROR_CODES.NONE, group: entry ? describeGroup(entry.group) : dead };
    } catch (err) {
      return { errorCode: this.#codeFor(err, "DescribeGroups"), group: dead };
    }
  }

  /**
   * Every group with members, a stored record or committed offsets. Groups
   * not in memory are read from the store without taking them over.
   */
  async listGroups(): Promise<ListGroupsResult> {
    if (this.#stopped) return { errorCode: ERROR_CODES.NOT_COORDINATOR, groups: [] };
    try {
      const names = new Set(await this.#metadata.listGroups());
      for (const [name, entry] of this.#groups) {
        if (entry.group.state !== GROUP_STATES.DEAD) names.add(name);
      }
      const sorted = [...names].sort();
      const groups: GroupListing[] = [];
      for (let i = 0; i < sorted.length; i += LIST_READS_CONCURRENCY) {
        const batch = await Promise.all(
          sorted.slice(i, i + LIST_READS_CONCURRENCY).map(async (groupId) => {
            const group = this.#groups.get(groupId)?.group ?? await this.#peekGroup(groupId);
            return { groupId, protocolType: group.protocolType ?? "", state: group.state };
          }),
        );
        groups.push(...batch);
      }
      return { errorCode: ERROR_CODES.NONE, groups };
    } catch (err) {
      return { errorCode: this.#codeFor(err, "ListGroups"), groups: [] };
    }
  }

  /** Deletes an empty group with its offsets; NON_EMPTY_GROUP when it has members. */
  async deleteGroup(groupId: string): Promise<number> {
    if (this.#stopped) return ERROR_CODES.NOT_COORDINATOR;
    if (!isValidGroupId(groupId)) return ERROR_CODES.INVALID_GROUP_ID;
    try {
      const entry = await this.#entry(groupId, false);
      if (!entry) return ERROR_CODES.GROUP_ID_NOT_FOUND;
      const effect = await this.#request(entry, (requestId) => ({ type: "delete", requestId }));
      if (effect.type !== "delete-checked") throw new Error(`Delete answered by ${effect.type}`);
      if (effect.errorCode !== ERROR_CODES.NONE) return effect.errorCode;
      // The group is Dead and out of memory; its writes and commits finish before the delete.
      const deletion = (async () => {
        await entry.writes;
        await Promise.allSettled([...entry.commits]);
        await this.#metadata.deleteGroup(groupId);
      })();
      const settled = deletion.catch(() => {});
      this.#deleting.set(groupId, settled);
      try {
        await deletion;
      } finally {
        if (this.#deleting.get(groupId) === settled) this.#deleting.delete(groupId);
      }
      this.#logger.info("Deleted group", { group: groupId });
      return ERROR_CODES.NONE;
    } catch (err) {
      return this.#codeFor(err, "DeleteGroups");
    }
  }

  // ---- loading --------------------------------------------------------------------

  /**
   * The group's entry: in memory, else loaded from the store (the explicit
   * take-over step), else created when `create` is set. Null when the group
   * does not exist.
   */
  async #entry(groupId: string, create: boolean): Promise<GroupEntry | null> {
    for (let attempt = 0; attempt < GROUP_ACCESS_ATTEMPTS_MAX; attempt++) {
      const existing = this.#groups.get(groupId);
      if (existing && this.#ownsStill(existing)) return existing;
      if (existing) {
        // Its owner key hung on a lease this broker lost: take it again, from the store.
        this.#giveUp(existing, "The session lease that owned the group was lost; reloading");
        continue;
      }
      await this.#deleting.get(groupId);
      const { entry: loaded } = await this.#loadGroup(groupId, create);
      if (this.#stopped) {
        throw new CoordinatorError(ERROR_CODES.NOT_COORDINATOR, "The coordinator is stopping");
      }
      if (loaded?.live) return loaded;
      if (loaded) continue; // Dropped while we waited: look again.
      const current = this.#groups.get(groupId);
      if (current) return current;
      if (!create) return null;
      // We shared a load that did not create the group: load again, creating it.
    }
    throw new CoordinatorError(
      ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
      `Group "${groupId}" was dropped ${GROUP_ACCESS_ATTEMPTS_MAX} times while loading; retry`,
    );
  }

  /** Whether the entry's owner key hangs on the broker's current session lease. */
  #ownsStill(entry: GroupEntry): boolean {
    if (!this.#ownership) return true;
    return entry.owner !== null && entry.owner.leaseId === this.#ownership.leaseId;
  }

  /** Drops a group this broker no longer owns: held requests get NOT_COORDINATOR. */
  #giveUp(entry: GroupEntry, why: string): void {
    if (!entry.live) return;
    this.#logger.warn(why, { group: entry.group.groupId });
    this.#applySafely(entry, { type: "unload", errorCode: ERROR_CODES.NOT_COORDINATOR });
  }

  /**
   * Takes the group's owner key (a new epoch), so what is read from the store next is not
   * changed by an earlier owner. Null without ownership.
   */
  async #acquire(groupId: string): Promise<Ownership | null> {
    const ownership = this.#ownership;
    if (!ownership) return null;
    let leaseId: number;
    try {
      leaseId = await ownership.sessionLease();
    } catch (err) {
      throw new CoordinatorError(
        ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
        `Cannot take group "${groupId}" over: the broker has no session lease ` +
          `(${err instanceof Error ? err.message : String(err)}); retry`,
      );
    }
    const owner = await this.#metadata.acquireGroup(groupId, ownership.brokerId, leaseId);
    if (owner === "owned-by-other") {
      throw new CoordinatorError(
        ERROR_CODES.NOT_COORDINATOR,
        `Group "${groupId}" is coordinated by another broker; find its coordinator again`,
      );
    }
    return { epoch: owner.epoch, leaseId };
  }

  /**
   * Takes the group over from the store, creating it when there is none and `create` is set;
   * concurrent callers share one load. The entry is admitted inside the load: an entry admitted
   * after it (by a caller's continuation) would let a second load take the owner key again, and
   * the first entry, holding the older epoch, would then have every write refused.
   */
  #loadGroup(groupId: string, create: boolean): Promise<Loaded> {
    let loading = this.#loading.get(groupId);
    if (!loading) {
      loading = this.#readGroup(groupId, create).finally(() => this.#loading.delete(groupId));
      this.#loading.set(groupId, loading);
    }
    return loading;
  }

  async #readGroup(groupId: string, create: boolean): Promise<Loaded> {
    const owner = await this.#acquire(groupId);
    const stored = await this.#metadata.getGroup(groupId);
    let group: Group | null = null;
    if (stored) {
      group = groupFromRecord(decodeGroupRecord(groupId, stored.value), this.#clock.monotonic());
    } else if ((await this.#metadata.fetchOffsets(groupId)).length > 0) {
      group = newGroup(groupId); // Only offsets: an Empty group, as Kafka loads it.
    } else if (create) {
      if (this.#stopped) return { entry: null, owner };
      return {
        entry: this.#groups.get(groupId) ?? this.#admit(newGroup(groupId), 0, owner),
        owner,
      };
    }
    if (!group || this.#stopped) return { entry: null, owner };
    const existing = this.#groups.get(groupId);
    if (existing) return { entry: existing, owner };
    const entry = this.#admit(group, stored?.modRevision ?? 0, owner);
    this.#logger.info("Loaded group", {
      group: groupId,
      state: group.state,
      generation: group.generationId,
      members: group.members.size,
      ...(owner ? { epoch: owner.epoch } : {}),
    });
    return { entry, owner };
  }

  /** What a group looks like in the store, without taking it over. */
  async #peekGroup(groupId: string): Promise<Group> {
    const stored = await this.#metadata.getGroup(groupId);
    if (!stored) return newGroup(groupId);
    return groupFromRecord(decodeGroupRecord(groupId, stored.value), this.#clock.monotonic());
  }

  #admit(group: Group, revision: number, owner: Ownership | null): GroupEntry {
    if (this.#groups.size >= this.#config.maxGroups) this.#evictIdleGroups();
    if (this.#groups.size >= this.#config.maxGroups) {
      throw new CoordinatorError(
        ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
        `Cannot load group "${group.groupId}": ${this.#config.maxGroups} active groups ` +
          `are loaded (the limit); retry later or raise the group limit`,
      );
    }
    const entry: GroupEntry = {
      group,
      revision,
      live: true,
      timer: null,
      timerAt: Infinity,
      writes: Promise.resolve(),
      writesPending: 0,
      commits: new Set(),
      waiters: new Map(),
      owner,
    };
    this.#groups.set(group.groupId, entry);
    this.#metrics?.set("kafscale_groups_loaded", "Consumer groups in memory", this.#groups.size);
    this.#schedule(entry);
    return entry;
  }

  /** Drops empty groups with nothing in flight: everything they hold is in the store. */
  #evictIdleGroups(): void {
    for (const entry of [...this.#groups.values()]) {
      const g = entry.group;
      if (
        g.state === GROUP_STATES.EMPTY && g.pendingMembers.size === 0 &&
        g.pendingStores.size === 0 && entry.writesPending === 0 && entry.commits.size === 0 &&
        entry.waiters.size === 0
      ) {
        this.#drop(entry);
      }
    }
  }

  #drop(entry: GroupEntry): void {
    if (!entry.live) return;
    entry.live = false;
    entry.timer?.cancel();
    entry.timer = null;
    if (this.#groups.get(entry.group.groupId) === entry) this.#groups.delete(entry.group.groupId);
    this.#metrics?.set("kafscale_groups_loaded", "Consumer groups in memory", this.#groups.size);
    for (const [id, waiter] of entry.waiters) {
      waiter.reject(new Error(`Group "${entry.group.groupId}" dropped request ${id} unanswered`));
    }
    entry.waiters.clear();
  }

  // ---- driving the state machine ----------------------------------------------------

  /** Applies an event that carries a request id and waits for its answer. */
  #request(entry: GroupEntry, event: (requestId: number) => GroupEvent): Promise<ResponseEffect> {
    const requestId = this.#nextRequestId++;
    const answer = new Promise<ResponseEffect>((resolve, reject) => {
      entry.waiters.set(requestId, { resolve, reject });
    });
    try {
      this.#apply(entry, event(requestId));
    } catch (err) {
      entry.waiters.delete(requestId);
      throw err;
    }
    return answer;
  }

  #apply(entry: GroupEntry, event: GroupEvent): void {
    const { group, effects } = step(
      entry.group,
      event,
      this.#clock.monotonic(),
      this.#stateConfig,
    );
    entry.group = group;
    for (const effect of effects) this.#execute(entry, effect);
    if (group.state === GROUP_STATES.DEAD) this.#drop(entry);
    else this.#schedule(entry);
  }

  /** For timers and store callbacks: a broken invariant drops the group instead of the process. */
  #applySafely(entry: GroupEntry, event: GroupEvent): void {
    if (!entry.live) return;
    try {
      this.#apply(entry, event);
    } catch (err) {
      this.#logger.error("Group state machine failed; dropping the group from memory", {
        group: entry.group.groupId,
        event: event.type,
        err: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      this.#drop(entry);
    }
  }

  #execute(entry: GroupEntry, effect: GroupEffect): void {
    switch (effect.type) {
      case "persist":
        return this.#persist(entry, effect.record, effect.token);
      case "note":
        return this.#onNote(entry.group.groupId, effect.note);
      default: {
        const waiter = entry.waiters.get(effect.requestId);
        entry.waiters.delete(effect.requestId);
        waiter?.resolve(effect);
      }
    }
  }

  #persist(entry: GroupEntry, record: GroupRecord, token: number | null): void {
    const groupId = entry.group.groupId;
    const bytes = encodeGroupRecord(record);
    entry.writesPending++;
    const write = entry.writes.then(async () => {
      let errorCode: number = ERROR_CODES.NONE;
      try {
        const result = await this.#metadata.putGroupIfRevision(
          groupId,
          bytes,
          entry.revision,
          entry.owner?.epoch,
        );
        if (result === "conflict") errorCode = ERROR_CODES.NOT_COORDINATOR;
        else entry.revision = result;
      } catch (err) {
        errorCode = this.#codeFor(err, "Storing the group record");
      } finally {
        entry.writesPending--;
      }
      if (token !== null) this.#applySafely(entry, { type: "stored", token, errorCode });
      if (errorCode === ERROR_CODES.NOT_COORDINATOR && entry.live) {
        this.#logger.warn("Group record was changed by another writer; giving the group up", {
          group: groupId,
        });
        this.#applySafely(entry, { type: "unload", errorCode });
      }
    });
    entry.writes = write;
    this.#track(write);
  }

  #schedule(entry: GroupEntry): void {
    const at = nextDeadline(entry.group);
    if (at === null) {
      entry.timer?.cancel();
      entry.timer = null;
      entry.timerAt = Infinity;
      return;
    }
    // An earlier timer stays: its tick finds nothing due and schedules the next one.
    if (entry.timer && entry.timerAt <= at) return;
    entry.timer?.cancel();
    entry.timerAt = at;
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = null;
      entry.timerAt = Infinity;
      this.#applySafely(entry, { type: "tick" });
    }, Math.min(TIMER_DELAY_MAX_MS, Math.max(0, at - this.#clock.monotonic())));
  }

  #onNote(groupId: string, note: GroupNote): void {
    switch (note.kind) {
      case "member-joined":
        this.#logger.debug("Member joined group", { group: groupId, member: note.memberId });
        return;
      case "member-removed":
        this.#logger.info("Removed member from group", {
          group: groupId,
          member: note.memberId,
          reason: note.reason,
        });
        return;
      case "rebalance-started":
        this.#logger.info("Preparing to rebalance group", { group: groupId, reason: note.reason });
        return;
      case "generation-completed":
        this.#metrics?.inc("kafscale_group_rebalances_total", "Completed group rebalances");
        this.#logger.info("Completed group join phase", {
          group: groupId,
          generation: note.generationId,
          members: note.members,
          protocol: note.protocol,
        });
        return;
      case "group-empty":
        this.#logger.info("Group is empty", { group: groupId, generation: note.generationId });
        return;
      case "group-stable":
        this.#logger.info("Group is stable", { group: groupId, generation: note.generationId });
        return;
    }
  }

  #track(p: Promise<unknown>): void {
    const settled = p.then(() => {}, () => {});
    this.#inFlight.add(settled);
    settled.then(() => this.#inFlight.delete(settled));
  }

  /** Operating failures become retriable codes; anything else is logged as a bug. */
  #codeFor(err: unknown, what: string): number {
    if (err instanceof CoordinatorError) return err.code;
    if (err instanceof MetadataStoreError) {
      this.#logger.warn(`${what} failed: metadata store unavailable`, { err: err.message });
      return ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
    }
    if (err instanceof GroupRecordError) {
      this.#logger.error(`${what} failed`, { err: err.message });
      return ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
    }
    this.#logger.error(`${what} failed unexpectedly`, {
      err: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
    return ERROR_CODES.UNKNOWN_SERVER_ERROR;
  }
}
