/**
 * `rill acls`: access control lists (Kafka's model: allow or deny a principal an operation
 * on a topic, group or the cluster, by literal name or prefix; deny wins).
 *
 * ```
 * rill acls add    --principal P (--topic T | --group G | --cluster) [--prefixed]
 *                  --operation OP[,OP…] [--deny]
 * rill acls list   [--principal P] [--topic T | --group G | --cluster]
 * rill acls remove (--id ID | --principal P [--topic T | --group G | --cluster] [--operation OP] [--deny])
 * ```
 *
 * Operations: read, write, create, delete, alter, describe, all, and idempotent_write (cluster
 * only: start an idempotent producer without write on any topic). `--principal '*'` means
 * every authenticated principal; `--topic '*'` every topic.
 *
 * @module
 */
import { Transport } from "../client/transport.ts";
import { type CliIo, connection, expectPositionals, parseCommand, UsageError } from "./common.ts";

/** The help text of `rill acls`. */
export const ACLS_HELP = `Usage: rill acls <add|list|remove> [options]

  add     --principal P (--topic T | --group G | --cluster) [--prefixed]
          --operation OP[,OP...] [--deny]
  list    [--principal P] [--topic T | --group G | --cluster]
  remove  --id ID | --principal P [--topic T | --group G | --cluster] [--operation OP] [--deny]

Operations: read, write, create, delete, alter, describe, all, and idempotent_write (with
--cluster only: start an idempotent producer; write on any topic also allows that). Deny
wins over allow; with --auth on, what no ACL allows is denied. --prefixed makes the name a
prefix.

Options: --format text|json (list), --broker URL, --api-key KEY (default $RILL_API_KEY),
         --ca-file PEM
`;

interface Acl {
  id: string;
  principal: string;
  resourceType: string;
  patternType: string;
  resourceName: string;
  operation: string;
  permission: string;
}

function aclLine(a: Acl): string {
  return [
    a.permission,
    a.principal,
    a.operation,
    a.resourceType,
    a.patternType,
    a.resourceName,
    a.id,
  ]
    .join("\t");
}

/**
 * Runs `rill acls`.
 *
 * @param args the arguments after `acls`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; a RillError when the broker refuses
 * @example
 * ```ts
 * await run(["add", "--principal", "alice", "--topic", "orders", "--operation", "write"], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    principal: { type: "string" },
    topic: { type: "string" },
    group: { type: "string" },
    cluster: { type: "boolean" },
    prefixed: { type: "boolean" },
    operation: { type: "string" },
    deny: { type: "boolean" },
    id: { type: "string" },
    format: { type: "string" },
  });
  if (values.help || positionals.length === 0) {
    await io.out(ACLS_HELP);
    return values.help ? 0 : 2;
  }
  const [sub, ...rest] = positionals;
  expectPositionals(rest, []);
  const resources = [
    values.topic !== undefined ? ["topic", values.topic] : null,
    values.group !== undefined ? ["group", values.group] : null,
    values.cluster ? ["cluster", undefined] : null,
  ].filter((r) => r !== null) as [string, string | undefined][];
  if (resources.length > 1) throw new UsageError("Give one of --topic, --group, --cluster");
  const [resourceType, resourceName] = resources[0] ?? [undefined, undefined];
  const patternType = values.prefixed ? "prefixed" : undefined;
  const t = new Transport({ ...connection(values), retry: { retries: 2 } });
  switch (sub) {
    case "add": {
      if (values.principal === undefined) throw new UsageError("--principal is required");
      if (resourceType === undefined) {
        throw new UsageError("Give the resource: --topic T, --group G or --cluster");
      }
      if (values.operation === undefined) throw new UsageError("--operation is required");
      for (const operation of values.operation.split(",").map((s) => s.trim())) {
        const { acl } = await t.json<{ acl: Acl }>("POST", "/v1/auth/acls", {
          json: {
            principal: values.principal,
            resourceType,
            resourceName,
            patternType: patternType ?? "literal",
            operation,
            permission: values.deny ? "deny" : "allow",
          },
        });
        await io.out(`${aclLine(acl)}\n`);
      }
      return 0;
    }
    case "list": {
      const { acls } = await t.json<{ acls: Acl[] }>("GET", "/v1/auth/acls", {
        query: { principal: values.principal, resourceType, resourceName, patternType },
      });
      if (values.format === "json") {
        await io.out(JSON.stringify({ acls }) + "\n");
      } else if (values.format !== undefined && values.format !== "text") {
        throw new UsageError(`--format must be text or json, got "${values.format}"`);
      } else {
        await io.out(
          "PERMISSION\tPRINCIPAL\tOPERATION\tRESOURCE-TYPE\tPATTERN\tRESOURCE\tID\n" +
            acls.map((a) => `${aclLine(a)}\n`).join(""),
        );
      }
      return 0;
    }
    case "remove": {
      if (values.id === undefined && values.principal === undefined) {
        throw new UsageError("Give --id, or --principal with the fields of the ACLs to remove");
      }
      const { removed } = await t.json<{ removed: Acl[] }>("DELETE", "/v1/auth/acls", {
        query: {
          id: values.id,
          principal: values.principal,
          resourceType,
          resourceName,
          patternType,
          operation: values.operation,
          permission: values.deny ? "deny" : undefined,
        },
      });
      await io.err(`Removed ${removed.length} ACL(s)\n`);
      return 0;
    }
    default:
      throw new UsageError(`Unknown acls command "${sub}"; run "rill acls --help"`);
  }
}
