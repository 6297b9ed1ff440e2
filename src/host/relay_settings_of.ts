/**
 * Reads the certificate, key, CA and auth files named by the config and checks that they parse, so a bad file
 * is reported at startup (or keeps the old material on SIGHUP) instead of failing the first client.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { ConfigError, type ConfigIssue } from "../config/config_error.ts";
import type { Config } from "./config_schema.ts";
import type { RelaySettings } from "../core/relay_settings.ts";
import type { ClientTlsSettings, UpstreamTlsSettings } from "../core/tls_settings.ts";
import { ScramMock } from "../auth/scram_mock.ts";
import { lookupVerifier, parseUserlist } from "../auth/userlist.ts";
import { processMockSecret } from "./mock_secret.ts";
import { readSecretFile } from "./secret_file.ts";
import { Router } from "../routing/router.ts";
import { type ClusterSettings, singleUpstream } from "../routing/cluster_schema.ts";
import { formatAddress } from "../frontend/frontend.ts";

type Check = "certificate" | "key";

async function readPem(path: string, key: string, check: Check, issues: ConfigIssue[]): Promise<Uint8Array | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as { code?: string }).code;
    issues.push({ key, message: `cannot read "${path}": ${code === "ENOENT" ? "no such file" : (error as Error).message}` });
    return undefined;
  }
  try {
    if (check === "certificate") new X509Certificate(bytes);
    else createPrivateKey({ key: Buffer.from(bytes), format: "pem" });
  } catch (error) {
    issues.push({ key, message: `"${path}" is not a PEM ${check === "key" ? "private key" : "certificate"}: ${(error as Error).message}` });
    return undefined;
  }
  return bytes;
}

/** The relay settings of a config, with TLS material loaded. Throws ConfigError naming each bad file. */
export async function relaySettingsOf(config: Config, previous?: Router): Promise<RelaySettings> {
  const issues: ConfigIssue[] = [];
  const { tls, upstreamTls } = config;
  let clientEncryption: ClientTlsSettings = { mode: tls.mode, require: tls.require, server: undefined };
  if (tls.mode === "terminate" && tls.cert && tls.key) {
    const cert = await readPem(tls.cert, "tls.cert", "certificate", issues);
    const key = await readPem(tls.key, "tls.key", "key", issues);
    if (cert && key) clientEncryption = { ...clientEncryption, server: { cert, key } };
  }
  let upstreamEncryption: UpstreamTlsSettings = { mode: upstreamTls.mode, client: undefined };
  if (upstreamTls.mode !== "disable") {
    const ca = upstreamTls.ca === undefined ? undefined : await readPem(upstreamTls.ca, "upstream_tls.ca", "certificate", issues);
    const verify = upstreamTls.mode === "verify-full" ? "full" : upstreamTls.mode === "verify-ca" ? "ca" : "none";
    upstreamEncryption = {
      mode: upstreamTls.mode,
      negotiation: upstreamTls.negotiation,
      // With clusters, an empty name means "each host's own name" (the session fills it in).
      client: { verify, serverName: upstreamTls.serverName ?? (config.clusters.length > 0 ? "" : config.upstream.hostname), ...(ca ? { ca } : {}) },
    };
  }
  const clusterTls = new Map<string, UpstreamTlsSettings>();
  for (const cluster of config.clusters) {
    const tls = cluster.tls;
    if (!tls) continue;
    if (tls.mode === "disable") {
      clusterTls.set(cluster.name, { mode: "disable", client: undefined });
      continue;
    }
    const ca = tls.ca === undefined ? undefined : await readPem(tls.ca, `clusters.${cluster.name}.tls.ca`, "certificate", issues);
    const verify = tls.mode === "verify-full" ? "full" : tls.mode === "verify-ca" ? "ca" : "none";
    clusterTls.set(cluster.name, {
      mode: tls.mode,
      negotiation: tls.negotiation,
      client: { verify, serverName: tls.serverName ?? "", ...(ca ? { ca } : {}) },
    });
  }
  const healthPasswords = new Map<string, string>();
  const checked = config.clusters.filter((cluster) => cluster.health !== undefined);
  if (checked.length > 0 && config.auth.file !== undefined) {
    try {
      const users = parseUserlist(await readSecretFile(config.auth.file));
      for (const cluster of checked) {
        const user = cluster.health!.user;
        const password = lookupVerifier(users, user);
        if (password.kind === "plain") healthPasswords.set(user, password.password);
        else issues.push({ key: `clusters.${cluster.name}.health.user`, message: `"${user}" needs a plaintext password in auth.file to log in for health checks` });
      }
    } catch (error) {
      const code = (error as { code?: string }).code;
      const reason = code === "ENOENT" ? "no such file" : (error as Error).message;
      issues.push({ key: "auth.file", message: `"${config.auth.file}": ${reason}` });
    }
  }
  const routing = config.clusters.length > 0
    ? { clusters: config.clusters, routes: config.routes }
    : singleUpstream(formatAddress(config.upstream), config.pool);
  const router = new Router({
    clusters: routing.clusters,
    routes: routing.routes,
    holdMs: config.holdTimeoutMs,
    tlsOf: (cluster: ClusterSettings) => clusterTls.get(cluster.name),
    healthPasswords,
    healthRequireAuth: config.auth.upstreamRequireAuth,
    previous,
  });
  let authentication: RelaySettings["authentication"] = { mode: "relay" };
  if (config.auth.mode === "scram" && config.auth.file !== undefined) {
    try {
      const users = parseUserlist(await readSecretFile(config.auth.file));
      const { query, user, database, upstreamRequireAuth: requireAuth } = config.auth;
      authentication = { mode: "scram", users, mock: new ScramMock(processMockSecret()), upstreamRequireAuth: requireAuth };
      if (query !== undefined && user !== undefined) {
        const password = lookupVerifier(users, user);
        if (password.kind === "plain") authentication.query = { query, user, password: password.password, database, requireAuth };
        else issues.push({ key: "auth.user", message: `"${user}" needs a plaintext password in auth.file to run auth.query (PgBouncer's auth_user convention)` });
      }
    } catch (error) {
      const code = (error as { code?: string }).code;
      const reason = code === "ENOENT" ? "no such file" : (error as Error).message;
      issues.push({ key: "auth.file", message: `"${config.auth.file}": ${reason}` });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    authentication,
    upstream: config.upstream,
    router,
    startupTimeoutMs: config.startupTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    maxMessageBytes: config.maxMessageBytes,
    clientEncryption,
    upstreamEncryption,
    maxServerConnections: config.maxServerConnections,
  };
}
