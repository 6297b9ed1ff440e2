/**
 * A throw-away test PKI made with the `openssl` command line: a CA with three leaves (`server` for
 * PostgreSQL, `proxy` for pgrelay's own listener) plus a second, unrelated CA and a leaf (`other`) for
 * tests that expect verification to fail. EC P-256 keys (PKCS#8), SHA-256, valid for one day.
 *
 * Leaves are never self-signed: Deno's native TLS (rustls/webpki) rejects a certificate that is its
 * own CA (RUNTIME-NOTES), so every server certificate is CA:FALSE and chains to a CA:TRUE root.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { runChecked } from "./process.ts";

/** A CA certificate (its key stays in {@link TestPki.dir} and is not exposed). */
export interface TestCa {
  certPath: string;
  certPem: string;
}

/** A leaf certificate and its private key (PKCS#8 PEM, mode 0600). */
export interface TestLeaf {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

/** Everything {@link makeTestPki} generated. */
export interface TestPki {
  /** Directory holding all files (`*.crt`, `*.key`, `*.cnf`). */
  dir: string;
  /** Root that signed `server` and `proxy`. CN "pgrelay test CA". */
  ca: TestCa;
  /** A second, unrelated root that signed `other`. CN "pgrelay other test CA". */
  otherCa: TestCa;
  /** CN=localhost, SAN DNS:localhost, IP:127.0.0.1, serverAuth; signed by `ca`. For PostgreSQL. */
  server: TestLeaf;
  /** CN=pgrelay.test, SAN DNS:pgrelay.test, DNS:localhost, IP:127.0.0.1, serverAuth; signed by `ca`. */
  proxy: TestLeaf;
  /** CN=localhost, same SANs as `server`, but signed by `otherCa`: fails verification against `ca`. */
  other: TestLeaf;
  /**
   * Removes the generated files (the whole directory when makeTestPki created it) and forgets the
   * cached instance. The PKI is shared by every caller in the process, so tests normally leave it
   * alone; a process exit hook removes the default directory anyway.
   */
  cleanup(): Promise<void>;
}

const CA_NAMES = { ca: "pgrelay test CA", otherCa: "pgrelay other test CA" } as const;

interface LeafSpec {
  name: "server" | "proxy" | "other";
  cn: string;
  san: string;
  issuer: "ca" | "otherCa";
}

const LEAVES: readonly LeafSpec[] = [
  { name: "server", cn: "localhost", san: "DNS:localhost, IP:127.0.0.1", issuer: "ca" },
  { name: "proxy", cn: "pgrelay.test", san: "DNS:pgrelay.test, DNS:localhost, IP:127.0.0.1", issuer: "ca" },
  { name: "other", cn: "localhost", san: "DNS:localhost, IP:127.0.0.1", issuer: "otherCa" },
];

/** Every file name a PKI directory can contain (for cleanup of a caller-supplied directory). */
const FILE_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const stem of ["ca", "otherCa", ...LEAVES.map((l) => l.name)]) {
    names.push(`${stem}.crt`, `${stem}.key`, `${stem}.cnf`, `${stem}.csr`);
  }
  return names;
})();

/** One PKI per directory key ("" = the default temp dir), created once per process. */
const cache = new Map<string, Promise<TestPki>>();
/** The settled value behind each cache entry (so cleanup() evicts only its own entry). */
const current = new Map<string, TestPki>();
/** Temp directories we created; removed synchronously at process exit. */
const ownedDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Generates (once per process, then cached) the test PKI. Without `dir` the files go into a fresh
 * `mkdtemp` directory that is removed at process exit; with `dir` they are written there (the
 * directory is created if missing) and cached per resolved path.
 */
export function makeTestPki(dir?: string): Promise<TestPki> {
  const key = dir === undefined ? "" : resolve(dir);
  let pki = cache.get(key);
  if (pki === undefined) {
    pki = generate(key);
    cache.set(key, pki);
    pki.catch(() => cache.delete(key));
  }
  return pki;
}

/** `openssl version` output, or null when the binary is missing or broken. */
export async function opensslVersion(): Promise<string | null> {
  try {
    const res = await runChecked("openssl", ["version"], { env: opensslEnv(), timeoutMs: 10_000 });
    return res.stdout.trim();
  } catch {
    return null;
  }
}

async function generate(key: string): Promise<TestPki> {
  const owned = key === "";
  let dir: string;
  if (owned) {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-pki-"));
    ownedDirs.add(dir);
    installExitHook();
  } else {
    dir = key;
    await mkdir(dir, { recursive: true });
  }
  const removeFiles = async (): Promise<void> => {
    if (owned) {
      ownedDirs.delete(dir);
      await rm(dir, { recursive: true, force: true });
    } else {
      await Promise.all(FILE_NAMES.map((f) => rm(join(dir, f), { force: true })));
    }
  };
  try {
    const [ca, otherCa] = await Promise.all([
      makeCa(dir, "ca", CA_NAMES.ca),
      makeCa(dir, "otherCa", CA_NAMES.otherCa),
    ]);
    const leaves = await Promise.all(LEAVES.map((spec) => makeLeaf(dir, spec)));
    const [server, proxy, other] = leaves as [TestLeaf, TestLeaf, TestLeaf];
    const pki: TestPki = {
      dir,
      ca,
      otherCa,
      server,
      proxy,
      other,
      async cleanup(): Promise<void> {
        if (current.get(key) === pki) {
          current.delete(key);
          cache.delete(key);
        }
        await removeFiles();
      },
    };
    current.set(key, pki);
    return pki;
  } catch (err) {
    await removeFiles().catch(() => {});
    throw err;
  }
}

/** Self-signed root: CA:TRUE (critical, pathlen:0), keyUsage keyCertSign + cRLSign. */
async function makeCa(dir: string, stem: string, cn: string): Promise<TestCa> {
  const cnf = join(dir, `${stem}.cnf`);
  const keyPath = join(dir, `${stem}.key`);
  const certPath = join(dir, `${stem}.crt`);
  await writeFile(
    cnf,
    [
      "[req]",
      "distinguished_name = dn", // `openssl req` insists on this section even with -subj
      "[dn]",
      "[v3_ca]",
      "basicConstraints = critical, CA:TRUE, pathlen:0",
      "keyUsage = critical, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      "",
    ].join("\n"),
  );
  await openssl(cnf, [
    "req",
    "-x509",
    "-new",
    ...NEW_KEY_ARGS,
    "-keyout",
    keyPath,
    "-config",
    cnf,
    "-extensions",
    "v3_ca",
    "-subj",
    `/CN=${cn}`,
    "-days",
    "1",
    "-sha256",
    "-set_serial",
    serial(),
    "-out",
    certPath,
  ]);
  await chmod(keyPath, 0o600);
  return { certPath, certPem: await readFile(certPath, "utf8") };
}

/** CSR + `x509 -req` signed by the issuer, with explicit v3 extensions from an extfile. */
async function makeLeaf(dir: string, spec: LeafSpec): Promise<TestLeaf> {
  const cnf = join(dir, `${spec.name}.cnf`);
  const keyPath = join(dir, `${spec.name}.key`);
  const csrPath = join(dir, `${spec.name}.csr`);
  const certPath = join(dir, `${spec.name}.crt`);
  await writeFile(
    cnf,
    [
      "[req]",
      "distinguished_name = dn",
      "[dn]",
      "[v3_leaf]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature",
      "extendedKeyUsage = serverAuth",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      `subjectAltName = ${spec.san}`,
      "",
    ].join("\n"),
  );
  await openssl(cnf, [
    "req",
    "-new",
    ...NEW_KEY_ARGS,
    "-keyout",
    keyPath,
    "-config",
    cnf,
    "-subj",
    `/CN=${spec.cn}`,
    "-out",
    csrPath,
  ]);
  await chmod(keyPath, 0o600);
  // `x509 -req` ignores the CSR's extensions and, without -extfile, emits a v1 certificate
  // (which rustls rejects); the extensions therefore come from the extfile.
  await openssl(cnf, [
    "x509",
    "-req",
    "-in",
    csrPath,
    "-CA",
    join(dir, `${spec.issuer}.crt`),
    "-CAkey",
    join(dir, `${spec.issuer}.key`),
    "-set_serial",
    serial(),
    "-days",
    "1",
    "-sha256",
    "-extfile",
    cnf,
    "-extensions",
    "v3_leaf",
    "-out",
    certPath,
  ]);
  await rm(csrPath, { force: true });
  const [certPem, keyPem] = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]);
  return { certPath, keyPath, certPem, keyPem };
}

/**
 * `req` arguments generating a fresh unencrypted EC P-256 key alongside the request (PKCS#8
 * "BEGIN PRIVATE KEY", no "EC PARAMETERS" block). `-nodes` rather than 3.0's `-noenc` so 1.1.1 works.
 */
const NEW_KEY_ARGS: readonly string[] = [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-pkeyopt",
  "ec_param_enc:named_curve",
  "-nodes",
];

/** Runs openssl with OPENSSL_CONF pointing at our own config (or nowhere) so host configs can't interfere. */
async function openssl(cnf: string | undefined, args: string[]): Promise<void> {
  try {
    await runChecked("openssl", args, { env: opensslEnv(cnf), timeoutMs: 30_000 });
  } catch (err) {
    if (/ENOENT/.test(String(err))) {
      throw new Error(
        "the `openssl` command line tool is required for the TLS tests (apt-get install openssl)",
      );
    }
    throw err;
  }
}

function opensslEnv(cnf?: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env["OPENSSL_CONF"];
  delete env["OPENSSL_MODULES"];
  env["OPENSSL_CONF"] = cnf ?? "/dev/null";
  return env;
}

/** Random positive 127-bit serial in hex (top bit clear: serials must be positive). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return `0x${bytes.toString("hex")}`;
}

/** Minimal view of a global EventTarget (Deno fires "unload" where `deno test` skips process 'exit'). */
interface UnloadTarget {
  addEventListener?: (type: string, listener: () => void) => void;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const removeAll = (): void => {
    for (const dir of [...ownedDirs]) {
      ownedDirs.delete(dir);
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort during exit
      }
    }
  };
  process.on("exit", removeAll);
  (globalThis as unknown as UnloadTarget).addEventListener?.("unload", removeAll);
}
