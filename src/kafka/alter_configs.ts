/**
 * AlterConfigs (33) and IncrementalAlterConfigs (44) on topics, through the broker's
 * `alterTopic` (the same validation and store as `PATCH /v1/topics/{t}` and
 * `rill topics alter`). AlterConfigs replaces a topic's explicit configs with the ones given
 * (those left out go back to their defaults); IncrementalAlterConfigs sets (operation 0) or
 * removes (1) single configs. Broker configs are command-line flags, so a broker resource is
 * refused, as are APPEND (2) and SUBTRACT (3).
 *
 * @module
 */
import { validateTopicConfigs } from "../coordination/topic_configs.ts";
import { RillError } from "../protocol/errors.ts";
import { allowed, type KafkaContext, type Session } from "./context.ts";
import { kafkaCode, kafkaMessage } from "./errors.ts";

const TOPIC = 2;
const SET = 0;
const DELETE = 1;

interface Resource {
  resourceType: number;
  resourceName: string;
  configs: { name: string; value: string | null; configOperation?: number }[];
}

/** The changes one resource asks for: name → value, null to remove. */
type Changes = (
  current: Record<string, string>,
  configs: Resource["configs"],
) => Record<string, string | null>;

async function alter(
  ctx: KafkaContext,
  s: Session,
  req: { resources: Resource[]; validateOnly: boolean },
  changes: Changes,
): Promise<Record<string, unknown>> {
  const responses = [];
  for (const r of req.resources) {
    const out = {
      errorCode: 0,
      errorMessage: null as string | null,
      resourceType: r.resourceType,
      resourceName: r.resourceName,
    };
    try {
      if (r.resourceType !== TOPIC) {
        throw new RillError(
          "INVALID_REQUEST",
          `Only topic configs (resource type 2) can be altered; broker configs are command-line flags`,
        );
      }
      if (!allowed(ctx, s, { type: "topic", name: r.resourceName }, "alter")) {
        throw new RillError(
          "TOPIC_AUTHORIZATION_FAILED",
          `Not authorized to alter "${r.resourceName}"`,
        );
      }
      const current = (await ctx.broker.describeTopic(r.resourceName)).meta.configs;
      const configs = changes(current, r.configs);
      if (req.validateOnly) validateTopicConfigs(configs, true);
      else await ctx.broker.alterTopic(r.resourceName, { configs });
    } catch (e) {
      out.errorCode = kafkaCode(e);
      out.errorMessage = kafkaMessage(e);
    }
    responses.push(out);
  }
  return { throttleTimeMs: 0, responses };
}

/**
 * AlterConfigs: a topic's explicit configs become exactly the ones given.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export function handleAlterConfigs(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  return alter(ctx, s, req, (current, configs) => {
    const out: Record<string, string | null> = {};
    for (const name of Object.keys(current)) out[name] = null;
    for (const c of configs) out[c.name] = c.value;
    return out;
  });
}

/**
 * IncrementalAlterConfigs: SET or DELETE single configs of a topic.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export function handleIncrementalAlterConfigs(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  return alter(ctx, s, req, (_current, configs) => {
    const out: Record<string, string | null> = {};
    for (const c of configs) {
      if (c.configOperation === SET && c.value !== null) out[c.name] = c.value;
      else if (c.configOperation === DELETE) out[c.name] = null;
      else {
        throw new RillError(
          "INVALID_REQUEST",
          `Config operation ${c.configOperation} on "${c.name}" is not supported (0 SET with a value, 1 DELETE)`,
        );
      }
    }
    return out;
  });
}
