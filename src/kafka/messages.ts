/**
 * The request and response schemas of every API the listener speaks, as tables (schema.ts),
 * with field versions as in Kafka's message definitions. Fields of versions the listener
 * does not advertise are listed only where a neighbouring version needs them.
 *
 * @module
 */
import { f, type Field, type Message, message } from "./schema.ts";

/** Kafka API keys the listener knows. */
export const API = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  OffsetForLeaderEpoch: 23,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  SaslAuthenticate: 36,
  CreatePartitions: 37,
  DeleteGroups: 42,
  IncrementalAlterConfigs: 44,
} as const;

/** A request schema and its response schema. */
export interface ApiSchema {
  /** the request body */
  req: Message;
  /** the response body */
  res: Message;
}

const NONE = Infinity;

/** Schemas by API key. */
/** Per-resource results of AlterConfigs and IncrementalAlterConfigs (the same in both). */
const ALTER_CONFIGS_RESULTS: Field[] = [
  f("errorCode", "i16"),
  f("errorMessage", "nstr"),
  f("resourceType", "i8"),
  f("resourceName", "str"),
];

export const SCHEMAS: Record<number, ApiSchema> = {
  [API.ApiVersions]: {
    req: message(3, [
      f("clientSoftwareName", "str", "3+"),
      f("clientSoftwareVersion", "str", "3+"),
    ]),
    res: message(3, [
      f("errorCode", "i16"),
      f("apiKeys", [f("apiKey", "i16"), f("minVersion", "i16"), f("maxVersion", "i16")]),
      f("throttleTimeMs", "i32", "1+"),
    ]),
  },
  [API.Metadata]: {
    req: message(9, [
      f("topics", [f("topicId", "uuid", "10+"), f("name", "nstr")]),
      f("allowAutoTopicCreation", "bool", "4+", true),
      f("includeClusterAuthorizedOperations", "bool", "8-10"),
      f("includeTopicAuthorizedOperations", "bool", "8+"),
    ]),
    res: message(9, [
      f("throttleTimeMs", "i32", "3+"),
      f("brokers", [
        f("nodeId", "i32"),
        f("host", "str"),
        f("port", "i32"),
        f("rack", "nstr", "1+"),
      ]),
      f("clusterId", "nstr", "2+"),
      f("controllerId", "i32", "1+", -1),
      f("topics", [
        f("errorCode", "i16"),
        f("name", "nstr"),
        f("topicId", "uuid", "10+"),
        f("isInternal", "bool", "1+"),
        f("partitions", [
          f("errorCode", "i16"),
          f("partitionIndex", "i32"),
          f("leaderId", "i32"),
          f("leaderEpoch", "i32", "7+", -1),
          f("replicaNodes", "[i32]"),
          f("isrNodes", "[i32]"),
          f("offlineReplicas", "[i32]", "5+"),
        ]),
        f("topicAuthorizedOperations", "i32", "8+", -2147483648),
      ]),
      f("clusterAuthorizedOperations", "i32", "8-10", -2147483648),
    ]),
  },
  [API.Produce]: {
    req: message(9, [
      f("transactionalId", "nstr", "3+"),
      f("acks", "i16"),
      f("timeoutMs", "i32"),
      f("topicData", [
        f("name", "str"),
        f("partitionData", [f("index", "i32"), f("records", "nbytes")]),
      ]),
    ]),
    res: message(9, [
      f("responses", [
        f("name", "str"),
        f("partitionResponses", [
          f("index", "i32"),
          f("errorCode", "i16"),
          f("baseOffset", "i64"),
          f("logAppendTimeMs", "i64", "2+", -1),
          f("logStartOffset", "i64", "5+", -1),
          f("recordErrors", [f("batchIndex", "i32"), f("batchIndexErrorMessage", "nstr")], "8+"),
          f("errorMessage", "nstr", "8+"),
        ]),
      ]),
      f("throttleTimeMs", "i32", "1+"),
    ]),
  },
  [API.Fetch]: {
    req: message(12, [
      f("replicaId", "i32", "0-14", -1),
      f("maxWaitMs", "i32"),
      f("minBytes", "i32"),
      f("maxBytes", "i32", "3+", 0x7fffffff),
      f("isolationLevel", "i8", "4+"),
      f("sessionId", "i32", "7+"),
      f("sessionEpoch", "i32", "7+", -1),
      f("topics", [
        f("topic", "str", "0-12"),
        f("topicId", "uuid", "13+"),
        f("partitions", [
          f("partition", "i32"),
          f("currentLeaderEpoch", "i32", "9+", -1),
          f("fetchOffset", "i64"),
          f("lastFetchedEpoch", "i32", "12+", -1),
          f("logStartOffset", "i64", "5+", -1),
          f("partitionMaxBytes", "i32"),
        ]),
      ]),
      f("forgottenTopicsData", [
        f("topic", "str", "7-12"),
        f("topicId", "uuid", "13+"),
        f("partitions", "[i32]"),
      ], "7+"),
      f("rackId", "str", "11+"),
    ]),
    res: message(12, [
      f("throttleTimeMs", "i32", "1+"),
      f("errorCode", "i16", "7+"),
      f("sessionId", "i32", "7+"),
      f("responses", [
        f("topic", "str", "0-12"),
        f("topicId", "uuid", "13+"),
        f("partitions", [
          f("partitionIndex", "i32"),
          f("errorCode", "i16"),
          f("highWatermark", "i64"),
          f("lastStableOffset", "i64", "4+", -1),
          f("logStartOffset", "i64", "5+", -1),
          f("abortedTransactions", [f("producerId", "i64"), f("firstOffset", "i64")], "4+"),
          f("preferredReadReplica", "i32", "11+", -1),
          f("records", "nbytes"),
        ]),
      ]),
    ]),
  },
  [API.ListOffsets]: {
    req: message(6, [
      f("replicaId", "i32"),
      f("isolationLevel", "i8", "2+"),
      f("topics", [
        f("name", "str"),
        f("partitions", [
          f("partitionIndex", "i32"),
          f("currentLeaderEpoch", "i32", "4+", -1),
          f("timestamp", "i64"),
          f("maxNumOffsets", "i32", "0", 1),
        ]),
      ]),
      f("timeoutMs", "i32", "10+"),
    ]),
    res: message(6, [
      f("throttleTimeMs", "i32", "2+"),
      f("topics", [
        f("name", "str"),
        f("partitions", [
          f("partitionIndex", "i32"),
          f("errorCode", "i16"),
          f("oldStyleOffsets", "[i64]", "0"),
          f("timestamp", "i64", "1+", -1),
          f("offset", "i64", "1+", -1),
          f("leaderEpoch", "i32", "4+", -1),
        ]),
      ]),
    ]),
  },
  [API.FindCoordinator]: {
    req: message(3, [
      f("key", "str", "0-3"),
      f("keyType", "i8", "1+"),
      f("coordinatorKeys", "[str]", "4+"),
    ]),
    res: message(3, [
      f("throttleTimeMs", "i32", "1+"),
      f("errorCode", "i16", "0-3"),
      f("errorMessage", "nstr", "1-3"),
      f("nodeId", "i32", "0-3"),
      f("host", "str", "0-3"),
      f("port", "i32", "0-3"),
      f("coordinators", [
        f("key", "str"),
        f("nodeId", "i32"),
        f("host", "str"),
        f("port", "i32"),
        f("errorCode", "i16"),
        f("errorMessage", "nstr"),
      ], "4+"),
    ]),
  },
  [API.JoinGroup]: {
    req: message(6, [
      f("groupId", "str"),
      f("sessionTimeoutMs", "i32"),
      f("rebalanceTimeoutMs", "i32", "1+", -1),
      f("memberId", "str"),
      f("groupInstanceId", "nstr", "5+"),
      f("protocolType", "str"),
      f("protocols", [f("name", "str"), f("metadata", "bytes")]),
      f("reason", "nstr", "8+"),
    ]),
    res: message(6, [
      f("throttleTimeMs", "i32", "2+"),
      f("errorCode", "i16"),
      f("generationId", "i32", "0+", -1),
      f("protocolType", "nstr", "7+"),
      f("protocolName", "nstr"),
      f("leader", "str"),
      f("skipAssignment", "bool", "9+"),
      f("memberId", "str"),
      f("members", [
        f("memberId", "str"),
        f("groupInstanceId", "nstr", "5+"),
        f("metadata", "bytes"),
      ]),
    ]),
  },
  [API.SyncGroup]: {
    req: message(4, [
      f("groupId", "str"),
      f("generationId", "i32"),
      f("memberId", "str"),
      f("groupInstanceId", "nstr", "3+"),
      f("protocolType", "nstr", "5+"),
      f("protocolName", "nstr", "5+"),
      f("assignments", [f("memberId", "str"), f("assignment", "bytes")]),
    ]),
    res: message(4, [
      f("throttleTimeMs", "i32", "1+"),
      f("errorCode", "i16"),
      f("protocolType", "nstr", "5+"),
      f("protocolName", "nstr", "5+"),
      f("assignment", "bytes"),
    ]),
  },
  [API.Heartbeat]: {
    req: message(4, [
      f("groupId", "str"),
      f("generationId", "i32"),
      f("memberId", "str"),
      f("groupInstanceId", "nstr", "3+"),
    ]),
    res: message(4, [f("throttleTimeMs", "i32", "1+"), f("errorCode", "i16")]),
  },
  [API.LeaveGroup]: {
    req: message(4, [
      f("groupId", "str"),
      f("memberId", "str", "0-2"),
      f("members", [
        f("memberId", "str"),
        f("groupInstanceId", "nstr"),
        f("reason", "nstr", "5+"),
      ], "3+"),
    ]),
    res: message(4, [
      f("throttleTimeMs", "i32", "1+"),
      f("errorCode", "i16"),
      f(
        "members",
        [f("memberId", "str"), f("groupInstanceId", "nstr"), f("errorCode", "i16")],
        "3+",
      ),
    ]),
  },
  [API.OffsetCommit]: {
    req: message(8, [
      f("groupId", "str"),
      f("generationId", "i32", "1+", -1),
      f("memberId", "str", "1+"),
      f("groupInstanceId", "nstr", "7+"),
      f("retentionTimeMs", "i64", "2-4", -1),
      f("topics", [
        f("name", "str"),
        f("partitions", [
          f("partitionIndex", "i32"),
          f("committedOffset", "i64"),
          f("committedLeaderEpoch", "i32", "6+", -1),
          f("commitTimestamp", "i64", "1", -1),
          f("committedMetadata", "nstr"),
        ]),
      ]),
    ]),
    res: message(8, [
      f("throttleTimeMs", "i32", "3+"),
      f("topics", [
        f("name", "str"),
        f("partitions", [f("partitionIndex", "i32"), f("errorCode", "i16")]),
      ]),
    ]),
  },
  [API.OffsetFetch]: {
    req: message(6, [
      f("groupId", "str", "0-7"),
      f("topics", [f("name", "str"), f("partitionIndexes", "[i32]")], "0-7"),
      f("groups", [
        f("groupId", "str"),
        f("memberId", "nstr", "9+"),
        f("memberEpoch", "i32", "9+", -1),
        f("topics", [f("name", "str"), f("partitionIndexes", "[i32]")]),
      ], "8+"),
      f("requireStable", "bool", "7+"),
    ]),
    res: message(6, [
      f("throttleTimeMs", "i32", "3+"),
      f("topics", [
        f("name", "str"),
        f("partitions", [
          f("partitionIndex", "i32"),
          f("committedOffset", "i64"),
          f("committedLeaderEpoch", "i32", "5+", -1),
          f("metadata", "nstr"),
          f("errorCode", "i16"),
        ]),
      ], "0-7"),
      f("errorCode", "i16", "2-7"),
      f("groups", [
        f("groupId", "str"),
        f("topics", [
          f("name", "str"),
          f("partitions", [
            f("partitionIndex", "i32"),
            f("committedOffset", "i64"),
            f("committedLeaderEpoch", "i32", "0+", -1),
            f("metadata", "nstr"),
            f("errorCode", "i16"),
          ]),
        ]),
        f("errorCode", "i16"),
      ], "8+"),
    ]),
  },
  [API.DescribeGroups]: {
    req: message(5, [f("groups", "[str]"), f("includeAuthorizedOperations", "bool", "3+")]),
    res: message(5, [
      f("throttleTimeMs", "i32", "1+"),
      f("groups", [
        f("errorCode", "i16"),
        f("groupId", "str"),
        f("groupState", "str"),
        f("protocolType", "str"),
        f("protocolData", "str"),
        f("members", [
          f("memberId", "str"),
          f("groupInstanceId", "nstr", "4+"),
          f("clientId", "str"),
          f("clientHost", "str"),
          f("memberMetadata", "bytes"),
          f("memberAssignment", "bytes"),
        ]),
        f("authorizedOperations", "i32", "3+", -2147483648),
      ]),
    ]),
  },
  [API.ListGroups]: {
    req: message(3, [f("statesFilter", "[str]", "4+"), f("typesFilter", "[str]", "5+")]),
    res: message(3, [
      f("throttleTimeMs", "i32", "1+"),
      f("errorCode", "i16"),
      f("groups", [
        f("groupId", "str"),
        f("protocolType", "str"),
        f("groupState", "str", "4+"),
        f("groupType", "str", "5+"),
      ]),
    ]),
  },
  [API.SaslHandshake]: {
    req: message(NONE, [f("mechanism", "str")]),
    res: message(NONE, [f("errorCode", "i16"), f("mechanisms", "[str]")]),
  },
  [API.SaslAuthenticate]: {
    req: message(2, [f("authBytes", "bytes")]),
    res: message(2, [
      f("errorCode", "i16"),
      f("errorMessage", "nstr"),
      f("authBytes", "bytes"),
      f("sessionLifetimeMs", "i64", "1+"),
    ]),
  },
  [API.CreateTopics]: {
    req: message(5, [
      f("topics", [
        f("name", "str"),
        f("numPartitions", "i32"),
        f("replicationFactor", "i16"),
        f("assignments", [f("partitionIndex", "i32"), f("brokerIds", "[i32]")]),
        f("configs", [f("name", "str"), f("value", "nstr")]),
      ]),
      f("timeoutMs", "i32"),
      f("validateOnly", "bool", "1+"),
    ]),
    res: message(5, [
      f("throttleTimeMs", "i32", "2+"),
      f("topics", [
        f("name", "str"),
        f("topicId", "uuid", "7+"),
        f("errorCode", "i16"),
        f("errorMessage", "nstr", "1+"),
        f("numPartitions", "i32", "5+", -1),
        f("replicationFactor", "i16", "5+", -1),
        f("configs", [
          f("name", "str"),
          f("value", "nstr"),
          f("readOnly", "bool"),
          f("configSource", "i8", "0+", -1),
          f("isSensitive", "bool"),
        ], "5+"),
      ]),
    ]),
  },
  [API.DeleteTopics]: {
    req: message(4, [
      f("topics", [f("name", "nstr"), f("topicId", "uuid")], "6+"),
      f("topicNames", "[str]", "0-5"),
      f("timeoutMs", "i32"),
    ]),
    res: message(4, [
      f("throttleTimeMs", "i32", "1+"),
      f("responses", [
        f("name", "nstr"),
        f("topicId", "uuid", "6+"),
        f("errorCode", "i16"),
        f("errorMessage", "nstr", "5+"),
      ]),
    ]),
  },
  [API.CreatePartitions]: {
    req: message(2, [
      f("topics", [
        f("name", "str"),
        f("count", "i32"),
        f("assignments", [f("brokerIds", "[i32]")]),
      ]),
      f("timeoutMs", "i32"),
      f("validateOnly", "bool"),
    ]),
    res: message(2, [
      f("throttleTimeMs", "i32"),
      f("results", [f("name", "str"), f("errorCode", "i16"), f("errorMessage", "nstr")]),
    ]),
  },
  [API.DescribeConfigs]: {
    req: message(4, [
      f("resources", [
        f("resourceType", "i8"),
        f("resourceName", "str"),
        f("configurationKeys", "[str]"),
      ]),
      f("includeSynonyms", "bool", "1+"),
      f("includeDocumentation", "bool", "3+"),
    ]),
    res: message(4, [
      f("throttleTimeMs", "i32"),
      f("results", [
        f("errorCode", "i16"),
        f("errorMessage", "nstr"),
        f("resourceType", "i8"),
        f("resourceName", "str"),
        f("configs", [
          f("name", "str"),
          f("value", "nstr"),
          f("readOnly", "bool"),
          f("isDefault", "bool", "0"),
          f("configSource", "i8", "1+", -1),
          f("isSensitive", "bool"),
          f("synonyms", [f("name", "str"), f("value", "nstr"), f("source", "i8")], "1+"),
          f("configType", "i8", "3+"),
          f("documentation", "nstr", "3+"),
        ]),
      ]),
    ]),
  },
  [API.AlterConfigs]: {
    req: message(2, [
      f("resources", [
        f("resourceType", "i8"),
        f("resourceName", "str"),
        f("configs", [f("name", "str"), f("value", "nstr")]),
      ]),
      f("validateOnly", "bool"),
    ]),
    res: message(2, [
      f("throttleTimeMs", "i32"),
      f("responses", ALTER_CONFIGS_RESULTS),
    ]),
  },
  [API.IncrementalAlterConfigs]: {
    req: message(1, [
      f("resources", [
        f("resourceType", "i8"),
        f("resourceName", "str"),
        f("configs", [f("name", "str"), f("configOperation", "i8"), f("value", "nstr")]),
      ]),
      f("validateOnly", "bool"),
    ]),
    res: message(1, [
      f("throttleTimeMs", "i32"),
      f("responses", ALTER_CONFIGS_RESULTS),
    ]),
  },
  [API.DeleteGroups]: {
    req: message(2, [f("groupsNames", "[str]")]),
    res: message(2, [
      f("throttleTimeMs", "i32"),
      f("results", [f("groupId", "str"), f("errorCode", "i16")]),
    ]),
  },
  [API.InitProducerId]: {
    req: message(2, [
      f("transactionalId", "nstr"),
      f("transactionTimeoutMs", "i32"),
      f("producerId", "i64", "3+", -1),
      f("producerEpoch", "i16", "3+", -1),
    ]),
    res: message(2, [
      f("throttleTimeMs", "i32"),
      f("errorCode", "i16"),
      f("producerId", "i64", "0+", -1),
      f("producerEpoch", "i16"),
    ]),
  },
  [API.OffsetForLeaderEpoch]: {
    req: message(4, [
      f("replicaId", "i32", "3+", -2),
      f("topics", [
        f("topic", "str"),
        f("partitions", [
          f("partition", "i32"),
          f("currentLeaderEpoch", "i32", "2+", -1),
          f("leaderEpoch", "i32"),
        ]),
      ]),
    ]),
    res: message(4, [
      f("throttleTimeMs", "i32", "2+"),
      f("topics", [
        f("topic", "str"),
        f("partitions", [
          f("errorCode", "i16"),
          f("partition", "i32"),
          f("leaderEpoch", "i32", "1+", -1),
          f("endOffset", "i64", "0+", -1),
        ]),
      ]),
    ]),
  },
};
