/**
 * Serdes: how keys and values of a stream become bytes and back (Kafka Streams' `Serde`).
 *
 * @module
 */

/**
 * Turns values of type `T` into bytes and back. `null` stays `null` (a tombstone).
 *
 * `serialize` may return a string, which stands for its UTF-8 bytes: it is written straight
 * into the record batch, which saves an allocation per record. A serde must return the same
 * bytes for equal values (keys of state stores are compared by their serialized form).
 *
 * @example
 * ```ts
 * const upper: Serde<string> = {
 *   serialize: (s) => new TextEncoder().encode(s.toUpperCase()),
 *   deserialize: (b) => new TextDecoder().decode(b),
 * };
 * ```
 */
export interface Serde<T> {
  /** the bytes of a value (or a string, standing for its UTF-8 bytes) */
  serialize(value: T): Uint8Array | string;
  /** the value of some bytes */
  deserialize(bytes: Uint8Array): T;
}

const dec = new TextDecoder();

/** UTF-8 → text; short ASCII (most keys) without the cost of a TextDecoder call. */
function decodeText(b: Uint8Array): string {
  const n = b.length;
  if (n <= 24) {
    let s = "";
    for (let i = 0; i < n; i++) {
      const c = b[i];
      if (c >= 0x80) return dec.decode(b);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return dec.decode(b);
}

/**
 * The built-in serdes: `string` (UTF-8), `json`, `bytes` (as is), `number` (a decimal
 * text, so the CLI shows it readably).
 *
 * @example
 * ```ts
 * builder.stream<string, { user: string }>("clicks", { keySerde: Serdes.string, valueSerde: Serdes.json() });
 * ```
 */
export const Serdes: {
  /** UTF-8 text */
  readonly string: Serde<string>;
  /** raw bytes */
  readonly bytes: Serde<Uint8Array>;
  /** a number as decimal text ("42") */
  readonly number: Serde<number>;
  /** JSON text of any value */
  json<T>(): Serde<T>;
} = {
  /** UTF-8 text */
  string: {
    serialize: (s: string) => s,
    deserialize: decodeText,
  } as Serde<string>,
  /** raw bytes */
  bytes: {
    serialize: (b: Uint8Array) => b,
    deserialize: (b: Uint8Array) => b,
  } as Serde<Uint8Array>,
  /** a number as decimal text ("42") */
  number: {
    serialize: (n: number) => String(n),
    deserialize: (b: Uint8Array) => {
      const n = Number(dec.decode(b));
      if (Number.isNaN(n)) throw new TypeError("The bytes are not a decimal number");
      return n;
    },
  } as Serde<number>,
  /**
   * JSON text of any value.
   *
   * @returns the serde
   */
  json<T>(): Serde<T> {
    return {
      serialize: (v: T) => JSON.stringify(v),
      deserialize: (b: Uint8Array) => JSON.parse(dec.decode(b)) as T,
    };
  },
};
