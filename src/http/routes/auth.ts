/**
 * The admin API of keys and ACLs, mounted at `/v1/auth`:
 *
 * ```
 * POST   /bootstrap     {"token"} → 201 {"key","token"}   one-time bootstrap token → first admin key
 * GET    /whoami        {"principal","superuser","keyId"}
 * POST   /keys          {"principal","superuser"?,"expiresMs"?,"description"?} → 201 {"key","token"}
 * GET    /keys          {"keys":[{"keyId","principal","superuser","description","createdMs","expiresMs","revokedMs"}]}
 * DELETE /keys/{keyId}  200 {"key"}   (revokes it; it stops working on every broker within seconds)
 * POST   /acls          {"principal","resourceType","patternType"?,"resourceName","operation","permission"?} → 201 {"acl"}
 * GET    /acls?principal=&resourceType=&patternType=&resourceName=&operation=&permission=   {"acls":[…]}
 * DELETE /acls?id=…|same filters   200 {"removed":[…]}
 * POST   /tickets       {"topic"} → 201 {"ticket","topic","expiresMs"}   a short-lived stream ticket (auth.ts)
 * ```
 *
 * Keys and ACL changes need `alter` on the cluster, listing them `describe`; only a
 * superuser may create a superuser key. The token of a new key is in the answer once and
 * never again.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import {
  type AclFilter,
  CLUSTER_RESOURCE,
  OPERATIONS,
  parseAclBinding,
  RESOURCE_TYPES,
} from "../../coordination/acls.ts";
import { validatePrincipal } from "../../coordination/auth_keys.ts";
import { validateTopicName } from "../../coordination/topics.ts";
import { RillError } from "../../protocol/errors.ts";
import { authorize, principalOf, type Security } from "../auth.ts";
import { onError } from "../errors.ts";
import { readJsonObject } from "../params.ts";

const LIMIT = 64 * 1024;
const CLUSTER = { type: "cluster", name: CLUSTER_RESOURCE } as const;

function aclFilter(c: Context): AclFilter {
  const f: AclFilter = {};
  const q = (name: string) => {
    const v = c.req.query(name);
    return v === undefined || v === "" ? undefined : v;
  };
  const id = q("id");
  if (id !== undefined) f.id = id;
  const principal = q("principal");
  if (principal !== undefined) f.principal = principal === "*" ? "*" : validatePrincipal(principal);
  const type = q("resourceType");
  if (type !== undefined) {
    if (!RESOURCE_TYPES.includes(type as never)) {
      throw new RillError("INVALID_REQUEST", `"resourceType" must be topic, group or cluster`);
    }
    f.resourceType = type as AclFilter["resourceType"];
  }
  const pattern = q("patternType");
  if (pattern !== undefined) {
    if (pattern !== "literal" && pattern !== "prefixed") {
      throw new RillError("INVALID_REQUEST", `"patternType" must be literal or prefixed`);
    }
    f.patternType = pattern;
  }
  const name = q("resourceName");
  if (name !== undefined) f.resourceName = name;
  const op = q("operation");
  if (op !== undefined) {
    if (op !== "all" && !OPERATIONS.includes(op as never)) {
      throw new RillError(
        "INVALID_REQUEST",
        `"operation" must be one of ${OPERATIONS.join(", ")}, all`,
      );
    }
    f.operation = op as AclFilter["operation"];
  }
  const perm = q("permission");
  if (perm !== undefined) {
    if (perm !== "allow" && perm !== "deny") {
      throw new RillError("INVALID_REQUEST", `"permission" must be allow or deny`);
    }
    f.permission = perm;
  }
  return f;
}

/**
 * The key and ACL admin routes.
 *
 * @param security the broker's security state
 * @returns a Hono app to mount at `/v1/auth`
 * @example
 * ```ts
 * app.route("/v1/auth", authRoutes(security));
 * ```
 */
export function authRoutes(security: Security): Hono {
  const app = new Hono();
  app.onError(onError);

  // Open without credentials (it is how the first credential is made), so one attempt at a
  // time: each costs a PBKDF2, and a crowd of guesses must not take the CPU.
  let bootstrapping = false;
  app.post("/bootstrap", async (c) => {
    const body = await readJsonObject(c, LIMIT);
    if (typeof body.token !== "string" || body.token === "") {
      throw new RillError("INVALID_REQUEST", `"token" must be the bootstrap token`);
    }
    if (bootstrapping) {
      throw new RillError("THROTTLING_QUOTA_EXCEEDED", "A bootstrap attempt is in progress");
    }
    bootstrapping = true;
    try {
      const created = await security.keys.bootstrapWithToken(body.token);
      await security.reload();
      return c.json({ key: created.key, token: created.token }, 201);
    } catch (e) {
      if (e instanceof RillError && e.code === "UNAUTHENTICATED") {
        security.auditDenied({ audit: "bootstrap_failed", method: "POST", path: c.req.path });
      }
      throw e;
    } finally {
      bootstrapping = false;
    }
  });

  app.get("/whoami", (c) => {
    const p = principalOf(c);
    return c.json({ principal: p.name, superuser: p.superuser, keyId: p.keyId });
  });

  app.post("/tickets", async (c) => {
    const body = await readJsonObject(c, LIMIT);
    for (const k in body) {
      if (k !== "topic") {
        throw new RillError(
          "INVALID_REQUEST",
          `Unknown field "${k.slice(0, 50)}" in a ticket request`,
        );
      }
    }
    if (typeof body.topic !== "string") {
      throw new RillError("INVALID_REQUEST", `"topic" must be a topic name`);
    }
    const topic = validateTopicName(body.topic);
    authorize(c, { type: "topic", name: topic }, "read");
    return c.json(await security.issueTicket(principalOf(c), topic), 201);
  });

  app.post("/keys", async (c) => {
    authorize(c, CLUSTER, "alter");
    const body = await readJsonObject(c, LIMIT);
    for (const k in body) {
      if (!["principal", "superuser", "expiresMs", "description"].includes(k)) {
        throw new RillError("INVALID_REQUEST", `Unknown field "${k.slice(0, 50)}"`);
      }
    }
    if (body.superuser !== undefined && typeof body.superuser !== "boolean") {
      throw new RillError("INVALID_REQUEST", `"superuser" must be a boolean`);
    }
    if (body.superuser === true && !principalOf(c).superuser) {
      throw new RillError(
        "CLUSTER_AUTHORIZATION_FAILED",
        "Only a superuser may create a superuser key",
      );
    }
    if (
      body.expiresMs !== undefined && body.expiresMs !== null &&
      (typeof body.expiresMs !== "number" || !Number.isSafeInteger(body.expiresMs))
    ) {
      throw new RillError("INVALID_REQUEST", `"expiresMs" must be a time in ms since the epoch`);
    }
    if (body.description !== undefined && typeof body.description !== "string") {
      throw new RillError("INVALID_REQUEST", `"description" must be a string`);
    }
    const created = await security.keys.create({
      principal: validatePrincipal(body.principal),
      superuser: body.superuser as boolean | undefined,
      expiresMs: body.expiresMs as number | null | undefined,
      description: body.description as string | undefined,
    });
    await security.reload();
    return c.json({ key: created.key, token: created.token }, 201);
  });

  app.get("/keys", async (c) => {
    authorize(c, CLUSTER, "describe");
    return c.json({ keys: await security.keys.list() });
  });

  app.delete("/keys/:keyId", async (c) => {
    authorize(c, CLUSTER, "alter");
    const key = await security.keys.revoke(c.req.param("keyId"));
    await security.reload();
    return c.json({ key });
  });

  app.post("/acls", async (c) => {
    authorize(c, CLUSTER, "alter");
    const acl = await security.acls.add(parseAclBinding(await readJsonObject(c, LIMIT)));
    await security.reload();
    return c.json({ acl }, 201);
  });

  app.get("/acls", async (c) => {
    authorize(c, CLUSTER, "describe");
    return c.json({ acls: await security.acls.list(aclFilter(c)) });
  });

  app.delete("/acls", async (c) => {
    authorize(c, CLUSTER, "alter");
    const removed = await security.acls.remove(aclFilter(c));
    await security.reload();
    return c.json({ removed });
  });

  return app;
}
