import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import {
  certificateEndPointHash,
  pemToDer,
  tlsServerEndPointHash,
} from "../../src/auth/tls_server_end_point.ts";
import { makeTestPki } from "../support/certs.ts";

describe("tls-server-end-point (RFC 5929)", () => {
  it("hashes a real ECDSA-SHA256 certificate's DER with SHA-256", async () => {
    const pki = await makeTestPki();
    const der = pemToDer(pki.proxy.certPem);
    assert.deepEqual(der, new Uint8Array(new X509Certificate(pki.proxy.certPem).raw));
    assert.equal(certificateEndPointHash(der), "SHA-256");
    const expected = new Uint8Array(createHash("sha256").update(der).digest());
    assert.deepEqual(await tlsServerEndPointHash(der), expected);
    assert.deepEqual(await tlsServerEndPointHash(der, "sha256"), expected);
  });

  it("maps MD5 and SHA-1 to SHA-256 and keeps SHA-384/512", async () => {
    const der = new Uint8Array([1, 2, 3]);
    const sha = (name: string): Uint8Array => new Uint8Array(createHash(name).update(der).digest());
    assert.deepEqual(await tlsServerEndPointHash(der, "SHA-1"), sha("sha256"));
    assert.deepEqual(await tlsServerEndPointHash(der, "MD5"), sha("sha256"));
    assert.deepEqual(await tlsServerEndPointHash(der, "SHA-384"), sha("sha384"));
    assert.deepEqual(await tlsServerEndPointHash(der, "sha512"), sha("sha512"));
    await assert.rejects(tlsServerEndPointHash(der, "SHA3-256"), RangeError);
  });

  it("rejects garbage DER and PEM without a certificate", async () => {
    await assert.rejects(
      tlsServerEndPointHash(new Uint8Array([0x30, 0x05, 0x01])),
      /malformed certificate DER/,
    );
    assert.throws(() => pemToDer("no pem here"), /no PEM certificate/);
    assert.throws(() => pemToDer("-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----"), /malformed/);
  });
});
