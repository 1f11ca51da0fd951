/**
 * The API versions the listener advertises (ApiVersions) and accepts. Every version listed
 * is decoded and answered by the schema tables of messages.ts; docs/kafka.md explains the
 * choices (the librdkafka < 2.11 group-feature trap keeps the group APIs' minimum at 0).
 *
 * @module
 */
import { API } from "./messages.ts";

/** [min, max] per API key, in ApiVersions order. */
export const SUPPORTED: ReadonlyMap<number, readonly [number, number]> = new Map(
  [
    // Produce from 0, though v0–v2 (message format v0/v1) are answered with
    // UNSUPPORTED_FOR_MESSAGE_FORMAT: librdkafka < 2.11 compresses with gzip, snappy or lz4
    // only for a broker whose Produce range includes v0 (the compression trap, docs/kafka.md).
    [API.Produce, [0, 11]],
    [API.Fetch, [4, 17]],
    [API.ListOffsets, [1, 6]],
    [API.Metadata, [0, 12]],
    [API.OffsetCommit, [0, 9]],
    [API.OffsetFetch, [0, 9]],
    [API.FindCoordinator, [0, 6]],
    [API.JoinGroup, [0, 9]],
    [API.Heartbeat, [0, 4]],
    [API.LeaveGroup, [0, 5]],
    [API.SyncGroup, [0, 5]],
    [API.DescribeGroups, [0, 5]],
    [API.ListGroups, [0, 5]],
    [API.SaslHandshake, [0, 1]],
    [API.ApiVersions, [0, 4]],
    [API.CreateTopics, [0, 7]],
    [API.DeleteTopics, [0, 6]],
    [API.InitProducerId, [0, 5]],
    [API.OffsetForLeaderEpoch, [0, 4]],
    [API.DescribeConfigs, [0, 4]],
    [API.AlterConfigs, [0, 2]],
    [API.SaslAuthenticate, [0, 2]],
    [API.CreatePartitions, [0, 3]],
    [API.DeleteGroups, [0, 2]],
    [API.IncrementalAlterConfigs, [0, 1]],
  ] as const,
);

/**
 * Whether a version of an API is served.
 *
 * @param apiKey the API key
 * @param version the version
 * @returns true when advertised
 */
export function isSupported(apiKey: number, version: number): boolean {
  const r = SUPPORTED.get(apiKey);
  return r !== undefined && version >= r[0] && version <= r[1];
}

/**
 * The ApiVersions answer body.
 *
 * @returns error 0 and every range
 */
export function apiVersionsBody(): Record<string, unknown> {
  return {
    errorCode: 0,
    apiKeys: [...SUPPORTED].map(([apiKey, [minVersion, maxVersion]]) => ({
      apiKey,
      minVersion,
      maxVersion,
    })),
    throttleTimeMs: 0,
  };
}
