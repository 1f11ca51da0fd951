/**
 * The handler of each API key (the listener checks versions and authentication first).
 *
 * @module
 */
import type { KafkaContext, Session } from "./context.ts";
import { API } from "./messages.ts";
import { apiVersionsBody } from "./versions.ts";
import { handleMetadata } from "./metadata.ts";
import { handleProduce } from "./produce.ts";
import { handleFetch, handleListOffsets, handleOffsetForLeaderEpoch } from "./fetch.ts";
import {
  handleCreatePartitions,
  handleCreateTopics,
  handleDeleteTopics,
  handleDescribeConfigs,
  handleInitProducerId,
} from "./admin.ts";
import {
  handleDeleteGroups,
  handleDescribeGroups,
  handleFindCoordinator,
  handleHeartbeat,
  handleJoinGroup,
  handleLeaveGroup,
  handleListGroups,
  handleOffsetCommit,
  handleOffsetFetch,
  handleSyncGroup,
} from "./groups.ts";
import { handleSaslAuthenticate, handleSaslHandshake } from "./sasl.ts";
import { handleAlterConfigs, handleIncrementalAlterConfigs } from "./alter_configs.ts";

/** Answers a decoded request with an answer body (null: no answer is owed). */
export type Handler = (
  ctx: KafkaContext,
  session: Session,
  version: number,
  // deno-lint-ignore no-explicit-any
  body: any,
) => Promise<Record<string, unknown> | null>;

/** Handlers by API key. */
export const HANDLERS: Record<number, Handler> = {
  [API.ApiVersions]: () => Promise.resolve(apiVersionsBody()),
  [API.Metadata]: handleMetadata,
  [API.Produce]: handleProduce,
  [API.Fetch]: handleFetch,
  [API.ListOffsets]: handleListOffsets,
  [API.OffsetForLeaderEpoch]: handleOffsetForLeaderEpoch,
  [API.CreateTopics]: handleCreateTopics,
  [API.DeleteTopics]: handleDeleteTopics,
  [API.CreatePartitions]: handleCreatePartitions,
  [API.DescribeConfigs]: handleDescribeConfigs,
  [API.AlterConfigs]: handleAlterConfigs,
  [API.IncrementalAlterConfigs]: handleIncrementalAlterConfigs,
  [API.DeleteGroups]: handleDeleteGroups,
  [API.InitProducerId]: handleInitProducerId,
  [API.FindCoordinator]: handleFindCoordinator,
  [API.JoinGroup]: handleJoinGroup,
  [API.SyncGroup]: handleSyncGroup,
  [API.Heartbeat]: handleHeartbeat,
  [API.LeaveGroup]: handleLeaveGroup,
  [API.OffsetCommit]: handleOffsetCommit,
  [API.OffsetFetch]: handleOffsetFetch,
  [API.DescribeGroups]: handleDescribeGroups,
  [API.ListGroups]: handleListGroups,
  [API.SaslHandshake]: handleSaslHandshake,
  [API.SaslAuthenticate]: handleSaslAuthenticate,
};
