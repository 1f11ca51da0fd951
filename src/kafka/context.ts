/**
 * What the Kafka handlers share: the broker, this listener's advertised address, the
 * security state (structurally the HTTP API's `Security`, so both protocols check one set
 * of keys and ACLs without importing each other), the group coordinator and the log.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import type { Operation, Resource, ResourceType } from "../coordination/acls.ts";
import { CLUSTER_RESOURCE } from "../coordination/acls.ts";
import { RillError } from "../protocol/errors.ts";
import type { ClassicGroups } from "./group_coordinator.ts";
import type { KafkaMeter } from "./observe.ts";

/** An authenticated caller (the same shape the HTTP API uses). */
export interface Principal {
  /** the principal name */
  name: string;
  /** passes every ACL check */
  superuser: boolean;
  /** the key used, if any */
  keyId: string | null;
}

/** The security operations the listener needs (implemented by the HTTP API's Security). */
export interface KafkaSecurity {
  /** whether credentials are required */
  readonly auth: boolean;
  /**
   * Authenticates an `Authorization` header value (the listener passes `Basic …` built from
   * the SASL/PLAIN username and password).
   */
  authenticate(header: string): Promise<Principal | { error: string; keyId?: string }>;
  /** whether a principal may do an operation on a resource */
  allowed(principal: Principal, resource: Resource, operation: Operation): boolean;
  /** whether a principal may do an operation on some resource of a type */
  allowedOnAny(principal: Principal, type: ResourceType, operation: Operation): boolean;
  /** writes an audit line */
  auditDenied(fields: Record<string, unknown>): void;
}

/** Everything a handler may use. */
export interface KafkaContext {
  /** the broker */
  broker: Broker;
  /** the host:port Metadata gives for this broker */
  advertisedHost: string;
  /** the advertised port */
  advertisedPort: number;
  /** the security state; null: auth off */
  security: KafkaSecurity | null;
  /** the classic-protocol group coordinator of this broker */
  groups: ClassicGroups;
  /** where one-line reports go */
  log: (line: string) => void;
  /** counts requests into the broker's metrics (observe.ts) */
  meter?: KafkaMeter;
}

/** One connection's state. */
export interface Session {
  /** the authenticated principal; null until SASL succeeds (auth on) */
  principal: Principal | null;
  /** the SASL mechanism chosen by SaslHandshake, or null */
  mechanism: string | null;
  /** the peer's address, for logs and DescribeGroups */
  peer: string;
  /** the client id of the last request */
  clientId: string;
  /**
   * the rack (`client.rack`) the connection's last Fetch v11+ named, if any: a follower in that
   * rack answers it Metadata as the cluster does (KIP-392, metadata.ts)
   */
  clientRack?: string;
  /** close the connection once the current answer is written (failed authentication) */
  closeAfterAnswer?: boolean;
}

const FAILED: Record<ResourceType, RillError["code"]> = {
  topic: "TOPIC_AUTHORIZATION_FAILED",
  group: "GROUP_AUTHORIZATION_FAILED",
  cluster: "CLUSTER_AUTHORIZATION_FAILED",
};

/**
 * Whether the session's principal may do `operation` on `resource`; a denial is audited.
 *
 * @param ctx the context
 * @param s the session
 * @param resource the resource
 * @param operation the operation
 * @param audit write an audit line on denial (false when filtering a listing)
 * @returns true when allowed (always with auth off)
 */
export function allowed(
  ctx: KafkaContext,
  s: Session,
  resource: Resource,
  operation: Operation,
  audit = true,
): boolean {
  const sec = ctx.security;
  if (sec === null || !sec.auth) return true;
  if (s.principal && sec.allowed(s.principal, resource, operation)) return true;
  if (!audit) return false;
  sec.auditDenied({
    audit: "authorization_denied",
    principal: s.principal?.name ?? null,
    keyId: s.principal?.keyId ?? null,
    resourceType: resource.type,
    resourceName: String(resource.name).slice(0, 255),
    operation,
    protocol: "kafka",
  });
  return false;
}

/**
 * Like {@linkcode allowed}, but throws the authorization error.
 *
 * @param ctx the context
 * @param s the session
 * @param resource the resource
 * @param operation the operation
 * @throws {RillError} TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED
 */
export function authorize(
  ctx: KafkaContext,
  s: Session,
  resource: Resource,
  operation: Operation,
): void {
  if (allowed(ctx, s, resource, operation)) return;
  throw new RillError(
    FAILED[resource.type],
    `Principal "${s.principal?.name}" is not authorized to ${operation} ${resource.type} "${
      String(resource.name).slice(0, 255)
    }"`,
  );
}

/** The cluster resource. */
export const CLUSTER: Resource = { type: "cluster", name: CLUSTER_RESOURCE };
