/**
 * A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it, made with
 * Debian's `openssl` (CI installs it when missing). For TLS tests and the security benchmark.
 *
 * @module
 */

/** PEM file paths of a CA and a server certificate with its key. */
export interface TlsFiles {
  /** the CA certificate (what clients trust) */
  ca: string;
  /** the server certificate */
  cert: string;
  /** the server's private key */
  key: string;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/**
 * Whether `openssl` can be run here.
 *
 * @returns true when it is installed
 */
export function hasOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Makes a P-256 CA and a server certificate for 127.0.0.1 and localhost, valid one day.
 *
 * @param dir where to write the files
 * @returns their paths
 * @example
 * ```ts
 * const { ca, cert, key } = await makeCertificates(await Deno.makeTempDir());
 * ```
 */
export async function makeCertificates(dir: string): Promise<TlsFiles> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const day = ["-days", "1"];
  await openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    ...day,
    "-subj",
    "/CN=rill-test-ca",
  );
  await openssl(
    dir,
    "req",
    ...ec,
    "-keyout",
    "key.pem",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    ...day,
    "-extfile",
    "ext.cnf",
  );
  return { ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}
