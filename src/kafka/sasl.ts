/**
 * SaslHandshake (17, v1) and SaslAuthenticate (36): SASL/PLAIN with a Rill API key
 * (username = key id, password = secret), checked by the same security state as the HTTP
 * API's Basic authentication. Only PLAIN is offered. Until it succeeds, a connection may
 * send only ApiVersions, SaslHandshake and SaslAuthenticate (the listener closes it on
 * anything else); a failed authentication answers SASL_AUTHENTICATION_FAILED and the
 * listener closes the connection after that answer.
 *
 * @module
 */
import { type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR } from "./errors.ts";

// deno-lint-ignore no-explicit-any
type Body = any;

const decoder = new TextDecoder();

/**
 * SaslHandshake.
 *
 * @param _ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export function handleSaslHandshake(
  _ctx: KafkaContext,
  s: Session,
  version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  if (version === 0) {
    // v0 is followed by raw SASL tokens outside Kafka's request framing, which this listener
    // does not read (it is advertised because librdkafka < 2.11 needs v0 in the range to
    // enable SASL at all; such clients then use v1 with SaslAuthenticate).
    s.closeAfterAnswer = true;
    return Promise.resolve({
      errorCode: KAFKA_ERROR.UNSUPPORTED_VERSION,
      mechanisms: ["PLAIN"],
    });
  }
  if (req.mechanism !== "PLAIN") {
    return Promise.resolve({
      errorCode: KAFKA_ERROR.UNSUPPORTED_SASL_MECHANISM,
      mechanisms: ["PLAIN"],
    });
  }
  s.mechanism = "PLAIN";
  return Promise.resolve({ errorCode: 0, mechanisms: ["PLAIN"] });
}

/**
 * SaslAuthenticate: `authzid \0 username \0 password`.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleSaslAuthenticate(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const fail = (errorCode: number, errorMessage: string) => ({
    errorCode,
    errorMessage,
    authBytes: new Uint8Array(0),
    sessionLifetimeMs: 0,
  });
  if (s.mechanism !== "PLAIN") {
    return fail(
      KAFKA_ERROR.ILLEGAL_SASL_STATE,
      "SaslHandshake with mechanism PLAIN must come first",
    );
  }
  const parts = decoder.decode(req.authBytes as Uint8Array).split("\u0000");
  const sec = ctx.security;
  if (parts.length !== 3 || sec === null) {
    s.closeAfterAnswer = true;
    return fail(KAFKA_ERROR.SASL_AUTHENTICATION_FAILED, "Malformed SASL/PLAIN credentials");
  }
  const [, username, password] = parts;
  const result = await sec.authenticate(`Basic ${btoa(`${username}:${password}`)}`);
  if ("error" in result) {
    sec.auditDenied({
      audit: "authentication_failed",
      reason: result.error,
      keyId: result.keyId ?? null,
      protocol: "kafka",
      peer: s.peer,
    });
    s.closeAfterAnswer = true;
    return fail(KAFKA_ERROR.SASL_AUTHENTICATION_FAILED, "Authentication failed: bad credentials");
  }
  s.principal = result;
  return { errorCode: 0, errorMessage: null, authBytes: new Uint8Array(0), sessionLifetimeMs: 0 };
}
