/** Self-test of the test PKI: chains, extensions and SANs as seen by `openssl`. */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { makeTestPki, type TestPki } from "./certs.ts";
import { type ProcessResult, runProcess } from "./process.ts";

/** openssl with no host config in the way. */
function openssl(args: string[]): Promise<ProcessResult> {
  return runProcess("openssl", args, { env: { PATH: process.env["PATH"], OPENSSL_CONF: "/dev/null" } });
}

/** `openssl x509 -noout -ext <names>` of a certificate file. */
async function extensions(certPath: string, names: string): Promise<string> {
  const res = await openssl(["x509", "-in", certPath, "-noout", "-ext", names]);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout;
}

/** The values of the SAN extension, e.g. ["DNS:localhost", "IP Address:127.0.0.1"]. */
async function subjectAltNames(certPath: string): Promise<string[]> {
  const text = await extensions(certPath, "subjectAltName");
  const body = text.split("\n").slice(1).join(" ").trim(); // first line is the extension's title
  return body.split(/,\s*/).filter((s) => s !== "");
}

describe("test rig: makeTestPki", () => {
  let pki: TestPki;

  before(async () => {
    pki = await makeTestPki();
  });

  it("is generated once per process", async () => {
    assert.equal(await makeTestPki(), pki);
  });

  it("writes PEM files matching the returned strings, keys mode 0600", () => {
    for (const ca of [pki.ca, pki.otherCa]) {
      assert.match(ca.certPem, /^-----BEGIN CERTIFICATE-----\n/);
      assert.ok(existsSync(ca.certPath));
    }
    for (const leaf of [pki.server, pki.proxy, pki.other]) {
      assert.match(leaf.certPem, /^-----BEGIN CERTIFICATE-----\n/);
      assert.match(leaf.keyPem, /^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8, no EC PARAMETERS block
      assert.equal(statSync(leaf.keyPath).mode & 0o777, 0o600);
      assert.ok(leaf.certPath.startsWith(pki.dir));
    }
  });

  it("server and proxy chain to ca; other chains only to otherCa", async () => {
    for (const leaf of [pki.server, pki.proxy]) {
      const res = await openssl(["verify", "-CAfile", pki.ca.certPath, leaf.certPath]);
      assert.equal(res.code, 0, res.stdout + res.stderr);
    }
    const bad = await openssl(["verify", "-CAfile", pki.ca.certPath, pki.other.certPath]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /unable to get local issuer certificate/);
    const good = await openssl(["verify", "-CAfile", pki.otherCa.certPath, pki.other.certPath]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
  });

  it("CAs are CA:TRUE with keyCertSign; leaves are CA:FALSE serverAuth", async () => {
    for (const ca of [pki.ca, pki.otherCa]) {
      const text = await extensions(ca.certPath, "basicConstraints,keyUsage");
      assert.match(text, /CA:TRUE/);
      assert.match(text, /Certificate Sign/);
    }
    for (const leaf of [pki.server, pki.proxy, pki.other]) {
      const text = await extensions(leaf.certPath, "basicConstraints,extendedKeyUsage");
      assert.match(text, /CA:FALSE/);
      assert.match(text, /TLS Web Server Authentication/);
    }
  });

  it("proxy leaf has SANs DNS:pgrelay.test, DNS:localhost, IP:127.0.0.1", async () => {
    assert.deepEqual(await subjectAltNames(pki.proxy.certPath), [
      "DNS:pgrelay.test",
      "DNS:localhost",
      "IP Address:127.0.0.1",
    ]);
    const subject = await openssl(["x509", "-in", pki.proxy.certPath, "-noout", "-subject"]);
    assert.match(subject.stdout, /CN\s*=\s*pgrelay\.test/);
  });

  it("server and other leaves have SANs DNS:localhost, IP:127.0.0.1", async () => {
    for (const leaf of [pki.server, pki.other]) {
      assert.deepEqual(await subjectAltNames(leaf.certPath), ["DNS:localhost", "IP Address:127.0.0.1"]);
    }
  });
});

describe("test rig: makeTestPki(dir)", () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-pki-test-"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes into the given dir, caches per dir, and cleanup() removes only its files", async () => {
    const pki = await makeTestPki(dir);
    assert.equal(pki.dir, dir);
    assert.equal(await makeTestPki(dir), pki);
    assert.notEqual(pki.ca.certPem, (await makeTestPki()).ca.certPem);
    assert.ok(existsSync(join(dir, "proxy.key")));
    await pki.cleanup();
    assert.ok(existsSync(dir));
    assert.ok(!existsSync(pki.proxy.keyPath));
    assert.ok(!existsSync(pki.ca.certPath));
  });
});
