/**
 * The `Authorization` header of the client's credentials (`auth`: an API key as a bearer
 * token, or a key id and secret for HTTP Basic).
 *
 * @module
 */

/**
 * The `Authorization` header value of client credentials.
 *
 * @param auth a bearer token, or key id and secret for HTTP Basic
 * @returns the header value
 * @throws {TypeError} on an empty token or a key id holding ":"
 * @example
 * ```ts
 * authorizationOf("rk_0123456789abcdef.s3cr3t"); // "Bearer rk_0123456789abcdef.s3cr3t"
 * ```
 */
export function authorizationOf(auth: string | { keyId: string; secret: string }): string {
  if (typeof auth === "string") {
    if (auth.trim() === "") throw new TypeError("auth must be a non-empty API key");
    return `Bearer ${auth.trim()}`;
  }
  if (!auth.keyId || auth.keyId.includes(":") || !auth.secret) {
    throw new TypeError("auth needs a keyId without ':' and a secret");
  }
  const bytes = new TextEncoder().encode(`${auth.keyId}:${auth.secret}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}
