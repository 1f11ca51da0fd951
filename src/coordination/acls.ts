/**
 * Access control lists in Deno KV, in Kafka's model: a binding allows or denies one
 * principal one operation on a resource pattern.
 *
 * Stored at `["rill", "auth", "acls", <aclId>]` as {@linkcode StoredAcl}; every change bumps
 * the auth version key of auth_keys.ts, which brokers poll.
 *
 * Evaluation ({@linkcode evaluateAcls}), as Kafka's AclAuthorizer:
 * - a binding matches when its principal is the principal or `*`, its resource type is the
 *   resource's, its pattern matches the name (`literal`: equal, or the name `*` for every
 *   resource; `prefixed`: the name starts with it), and its operation is the operation or
 *   `all`; an allow of read, write, delete or alter also allows describe;
 * - any matching deny wins; else any matching allow allows; else deny (default deny).
 *
 * `idempotent_write` applies to the cluster only (Kafka's IdempotentWrite): starting an
 * idempotent producer needs it, or `write` on at least one topic
 * ({@linkcode evaluateAclsOnAny}, Kafka's `authorizeByResourceType`, KIP-679).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { authVersionKey, validatePrincipal } from "./auth_keys.ts";
import { kvRetry } from "./kv_retry.ts";
import { ROOT } from "./kv_keys.ts";

/** What an ACL protects. */
export type ResourceType = "topic" | "group" | "cluster";
/** What a principal does to a resource. */
export type Operation =
  | "read"
  | "write"
  | "create"
  | "delete"
  | "alter"
  | "describe"
  | "idempotent_write";
/** How a binding names resources. */
export type PatternType = "literal" | "prefixed";

/** Every resource type. */
export const RESOURCE_TYPES: readonly ResourceType[] = ["topic", "group", "cluster"];
/** Every operation (plus `all` in bindings). */
export const OPERATIONS: readonly Operation[] = [
  "read",
  "write",
  "create",
  "delete",
  "alter",
  "describe",
  "idempotent_write",
];
/** The name of the one cluster resource. */
export const CLUSTER_RESOURCE = "rill-cluster";

/** One ACL binding. */
export interface AclBinding {
  /** a principal name, or `*` for every authenticated principal */
  principal: string;
  /** the resource type */
  resourceType: ResourceType;
  /** literal (exact name, or `*` for all) or prefixed */
  patternType: PatternType;
  /** the name or prefix */
  resourceName: string;
  /** the operation, or `all` */
  operation: Operation | "all";
  /** allow or deny */
  permission: "allow" | "deny";
}

/** A binding as stored. */
export interface StoredAcl extends AclBinding {
  /** its id */
  id: string;
  /** when it was added */
  createdMs: number;
}

/** A resource a request touches. */
export interface Resource {
  /** its type */
  type: ResourceType;
  /** its name (the cluster's is {@linkcode CLUSTER_RESOURCE}) */
  name: string;
}

const ACLS_PREFIX: Deno.KvKey = [ROOT, "auth", "acls"];
const IMPLIES_DESCRIBE: ReadonlySet<string> = new Set(["read", "write", "delete", "alter"]);

/**
 * Checks an ACL binding from a request body.
 *
 * @param body the object
 * @returns the binding
 * @throws {RillError} INVALID_REQUEST naming the bad field
 * @example
 * ```ts
 * parseAclBinding({ principal: "alice", resourceType: "topic", resourceName: "orders",
 *   operation: "write", permission: "allow" });
 * ```
 */
export function parseAclBinding(body: Record<string, unknown>): AclBinding {
  const allowed = [
    "principal",
    "resourceType",
    "patternType",
    "resourceName",
    "operation",
    "permission",
  ];
  for (const k in body) {
    if (!allowed.includes(k)) {
      throw new RillError("INVALID_REQUEST", `Unknown field "${k.slice(0, 50)}"`);
    }
  }
  const principal = body.principal === "*" ? "*" : validatePrincipal(body.principal);
  const resourceType = body.resourceType;
  if (!RESOURCE_TYPES.includes(resourceType as ResourceType)) {
    throw new RillError("INVALID_REQUEST", `"resourceType" must be topic, group or cluster`);
  }
  const patternType = body.patternType ?? "literal";
  if (patternType !== "literal" && patternType !== "prefixed") {
    throw new RillError("INVALID_REQUEST", `"patternType" must be literal or prefixed`);
  }
  let resourceName = body.resourceName;
  if (resourceType === "cluster") resourceName ??= CLUSTER_RESOURCE;
  if (
    typeof resourceName !== "string" || resourceName.length === 0 || resourceName.length > 255 ||
    !/^[\x21-\x7e]+$/.test(resourceName)
  ) {
    throw new RillError(
      "INVALID_REQUEST",
      `"resourceName" must be 1 to 255 printable characters without spaces`,
    );
  }
  const operation = body.operation;
  if (operation !== "all" && !OPERATIONS.includes(operation as Operation)) {
    throw new RillError(
      "INVALID_REQUEST",
      `"operation" must be one of ${OPERATIONS.join(", ")}, all`,
    );
  }
  if (operation === "idempotent_write" && resourceType !== "cluster") {
    throw new RillError(
      "INVALID_REQUEST",
      `"operation" idempotent_write applies to the cluster only`,
    );
  }
  const permission = body.permission ?? "allow";
  if (permission !== "allow" && permission !== "deny") {
    throw new RillError("INVALID_REQUEST", `"permission" must be allow or deny`);
  }
  return {
    principal,
    resourceType: resourceType as ResourceType,
    patternType,
    resourceName,
    operation: operation as Operation | "all",
    permission,
  };
}

function nameMatches(acl: AclBinding, name: string): boolean {
  if (acl.patternType === "prefixed") return name.startsWith(acl.resourceName);
  return acl.resourceName === "*" || acl.resourceName === name;
}

/**
 * Decides whether `principal` may do `operation` on `resource` under `acls` (deny wins,
 * default deny).
 *
 * @param acls the bindings
 * @param principal the principal
 * @param resource the resource
 * @param operation the operation
 * @returns true when allowed
 * @example
 * ```ts
 * evaluateAcls(acls, "alice", { type: "topic", name: "orders" }, "write");
 * ```
 */
export function evaluateAcls(
  acls: readonly AclBinding[],
  principal: string,
  resource: Resource,
  operation: Operation,
): boolean {
  let allowed = false;
  for (const acl of acls) {
    if (acl.principal !== principal && acl.principal !== "*") continue;
    if (acl.resourceType !== resource.type || !nameMatches(acl, resource.name)) continue;
    if (acl.permission === "deny") {
      if (acl.operation === operation || acl.operation === "all") return false;
      continue;
    }
    if (
      acl.operation === operation || acl.operation === "all" ||
      (operation === "describe" && IMPLIES_DESCRIBE.has(acl.operation))
    ) {
      allowed = true;
    }
  }
  return allowed;
}

/**
 * Decides whether `principal` may do `operation` on at least one resource of a type, as
 * Kafka's `authorizeByResourceType`: an allow binding must match it whose names are not
 * all covered by a deny — a deny on every name (`*`) wins outright; a literal allow counts
 * unless the same literal or a prefix of it is denied; a prefixed allow counts unless a
 * prefix of its prefix is denied.
 *
 * @param acls the bindings
 * @param principal the principal
 * @param type the resource type
 * @param operation the operation
 * @returns true when some resource of the type allows it
 * @example
 * ```ts
 * evaluateAclsOnAny(acls, "alice", "topic", "write"); // may alice write any topic?
 * ```
 */
export function evaluateAclsOnAny(
  acls: readonly AclBinding[],
  principal: string,
  type: ResourceType,
  operation: Operation,
): boolean {
  const deniedLiterals = new Set<string>();
  const deniedPrefixes: string[] = [];
  const allowed: AclBinding[] = [];
  for (const acl of acls) {
    if (acl.principal !== principal && acl.principal !== "*") continue;
    if (acl.resourceType !== type) continue;
    if (acl.permission === "deny") {
      if (acl.operation !== operation && acl.operation !== "all") continue;
      if (acl.patternType === "literal" && acl.resourceName === "*") return false;
      if (acl.patternType === "prefixed") deniedPrefixes.push(acl.resourceName);
      else deniedLiterals.add(acl.resourceName);
    } else if (
      acl.operation === operation || acl.operation === "all" ||
      (operation === "describe" && IMPLIES_DESCRIBE.has(acl.operation))
    ) allowed.push(acl);
  }
  const prefixDenied = (name: string) => deniedPrefixes.some((d) => name.startsWith(d));
  return allowed.some((a) =>
    (a.patternType === "literal" && a.resourceName === "*") ||
    (!prefixDenied(a.resourceName) &&
      (a.patternType === "prefixed" || !deniedLiterals.has(a.resourceName)))
  );
}

function sameBinding(a: AclBinding, b: AclBinding): boolean {
  return a.principal === b.principal && a.resourceType === b.resourceType &&
    a.patternType === b.patternType && a.resourceName === b.resourceName &&
    a.operation === b.operation && a.permission === b.permission;
}

/** A filter of {@linkcode AclStore.list} and {@linkcode AclStore.remove}: given fields must match. */
export type AclFilter = Partial<AclBinding> & { id?: string };

function matchesFilter(acl: StoredAcl, f: AclFilter): boolean {
  for (const [k, v] of Object.entries(f)) {
    if (v !== undefined && (acl as unknown as Record<string, unknown>)[k] !== v) return false;
  }
  return true;
}

/**
 * The ACL bindings in KV.
 *
 * @example
 * ```ts
 * const acls = new AclStore(await Deno.openKv(":memory:"));
 * await acls.add({ principal: "alice", resourceType: "topic", patternType: "prefixed",
 *   resourceName: "orders.", operation: "write", permission: "allow" });
 * ```
 */
export class AclStore {
  /**
   * @param kv the shared KV
   * @param now the clock
   */
  constructor(readonly kv: Deno.Kv, private readonly now: () => number = Date.now) {}

  /**
   * Adds a binding (an identical one already stored is returned instead).
   *
   * @param binding the binding
   * @returns the stored binding
   */
  async add(binding: AclBinding): Promise<StoredAcl> {
    const existing = (await this.list()).find((a) => sameBinding(a, binding));
    if (existing) return existing;
    const acl: StoredAcl = { ...binding, id: crypto.randomUUID(), createdMs: this.now() };
    await kvRetry(() =>
      this.kv.atomic().set([...ACLS_PREFIX, acl.id], acl).sum(authVersionKey(), 1n).commit()
    );
    return acl;
  }

  /**
   * Lists the bindings matching a filter.
   *
   * @param filter fields that must match (none: all)
   * @returns the bindings, oldest first
   */
  async list(filter: AclFilter = {}): Promise<StoredAcl[]> {
    const out: StoredAcl[] = [];
    for await (const e of this.kv.list<StoredAcl>({ prefix: ACLS_PREFIX })) {
      if (matchesFilter(e.value, filter)) out.push(e.value);
    }
    return out.sort((a, b) => a.createdMs - b.createdMs);
  }

  /**
   * Removes the bindings matching a filter (at least one field must be given).
   *
   * @param filter fields that must match
   * @returns the removed bindings
   * @throws {RillError} INVALID_REQUEST for an empty filter
   */
  async remove(filter: AclFilter): Promise<StoredAcl[]> {
    if (Object.values(filter).every((v) => v === undefined)) {
      throw new RillError("INVALID_REQUEST", "Name at least one field of the ACLs to remove");
    }
    const doomed = await this.list(filter);
    for (let i = 0; i < doomed.length; i += 500) {
      const op = this.kv.atomic();
      for (const a of doomed.slice(i, i + 500)) op.delete([...ACLS_PREFIX, a.id]);
      op.sum(authVersionKey(), 1n);
      await kvRetry(() => op.commit());
    }
    return doomed;
  }
}
