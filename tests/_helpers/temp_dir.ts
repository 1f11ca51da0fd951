/**
 * A temporary directory that removes itself: `await using dir = await tempDir();`.
 *
 * @module
 */

/** A temp dir path that is removed (recursively) on dispose. */
export interface TempDir extends AsyncDisposable {
  /** the directory's path */
  path: string;
}

/**
 * Makes a fresh temporary directory.
 *
 * @param prefix a name prefix for the directory
 * @returns the directory, removed when disposed
 */
export async function tempDir(prefix = "rill-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
  };
}
