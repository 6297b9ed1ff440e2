/**
 * When the certificates pgrelay loads expire, for `pgrelay_tls_certificate_expiry_timestamp_seconds`: read
 * at start and again on each successful SIGHUP reload, so a renewed certificate shows at once. Each entry is
 * named by its config key (`tls.cert`, `upstream_tls.ca`, `clusters.<name>.tls.ca`), never by a path, and
 * holds the earliest notAfter among the certificates in its PEM file (a chain is only as good as its
 * first certificate to expire).
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Config } from "./config_schema.ts";

export interface CertificateExpiry {
  /** The config key that names the file. */
  readonly certificate: string;
  /** Unix time in seconds of the earliest notAfter in the file. */
  readonly notAfterSeconds: number;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM files of certificates this config makes pgrelay load, by config key. */
export function certificateFiles(config: Config): { certificate: string; path: string }[] {
  const files: { certificate: string; path: string }[] = [];
  if (config.tls.mode === "terminate" && config.tls.cert !== undefined) files.push({ certificate: "tls.cert", path: config.tls.cert });
  if (config.upstreamTls.mode !== "disable" && config.upstreamTls.ca !== undefined) {
    files.push({ certificate: "upstream_tls.ca", path: config.upstreamTls.ca });
  }
  for (const cluster of config.clusters) {
    if (cluster.tls && cluster.tls.mode !== "disable" && cluster.tls.ca !== undefined) {
      files.push({ certificate: `clusters.${cluster.name}.tls.ca`, path: cluster.tls.ca });
    }
  }
  return files;
}

/** The earliest notAfter, in Unix seconds, of the certificates in a PEM text; undefined when it holds none. */
export function earliestNotAfter(pem: string): number | undefined {
  let earliest: number | undefined;
  for (const block of pem.match(PEM_CERTIFICATE) ?? []) {
    const certificate = new X509Certificate(block);
    const millis = Date.parse(certificate.validTo);
    if (Number.isNaN(millis)) continue;
    earliest = earliest === undefined ? millis : Math.min(earliest, millis);
  }
  return earliest === undefined ? undefined : Math.floor(earliest / 1000);
}

/**
 * Reads each certificate file of `config`. A file that cannot be read or parsed is left out (startup and
 * reload have already refused a config whose files are bad, so this only happens if a file changes between).
 */
export async function certificateExpiries(config: Config): Promise<CertificateExpiry[]> {
  const expiries: CertificateExpiry[] = [];
  for (const { certificate, path } of certificateFiles(config)) {
    try {
      const notAfterSeconds = earliestNotAfter(await readFile(path, "utf8"));
      if (notAfterSeconds !== undefined) expiries.push({ certificate, notAfterSeconds });
    } catch {
      // left out: see above
    }
  }
  return expiries;
}
