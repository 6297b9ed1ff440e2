/**
 * The `tls-server-end-point` channel binding of RFC 5929 §4.1, the one PostgreSQL's SCRAM-SHA-256-PLUS
 * uses: a hash of the server certificate's DER encoding, with the certificate's own signature hash, except
 * that MD5 and SHA-1 are replaced by SHA-256.
 * https://www.rfc-editor.org/rfc/rfc5929#section-4.1 ·
 * https://www.postgresql.org/docs/current/sasl-authentication.html#SASL-SCRAM-SHA-256
 */
import { decodeBase64 } from "./base64.ts";

/** WebCrypto digest names RFC 5929 can end up with. */
export type EndPointHash = "SHA-256" | "SHA-384" | "SHA-512";

/** Signature algorithm OIDs → the digest RFC 5929 prescribes for them. */
const SIGNATURE_HASHES: ReadonlyMap<string, EndPointHash> = new Map([
  ["1.2.840.113549.1.1.4", "SHA-256"], // md5WithRSAEncryption (MD5 → SHA-256)
  ["1.2.840.113549.1.1.5", "SHA-256"], // sha1WithRSAEncryption (SHA-1 → SHA-256)
  ["1.2.840.113549.1.1.11", "SHA-256"], // sha256WithRSAEncryption
  ["1.2.840.113549.1.1.12", "SHA-384"], // sha384WithRSAEncryption
  ["1.2.840.113549.1.1.13", "SHA-512"], // sha512WithRSAEncryption
  ["1.2.840.10045.4.1", "SHA-256"], // ecdsa-with-SHA1
  ["1.2.840.10045.4.3.2", "SHA-256"], // ecdsa-with-SHA256
  ["1.2.840.10045.4.3.3", "SHA-384"], // ecdsa-with-SHA384
  ["1.2.840.10045.4.3.4", "SHA-512"], // ecdsa-with-SHA512
  ["1.2.840.10040.4.3", "SHA-256"], // dsa-with-sha1
  ["2.16.840.1.101.3.4.3.2", "SHA-256"], // dsa-with-sha256
]);

/**
 * The channel-binding data for a certificate. Without `signatureHashAlgorithm` the hash is read from the
 * certificate's signatureAlgorithm; pass it ("SHA-1", "SHA-256", "SHA-384", "SHA-512"; "MD5"/"SHA-1" mean
 * SHA-256) for algorithms that name no single hash here, such as RSASSA-PSS. Ed25519/Ed448 certificates
 * have no defined tls-server-end-point (PostgreSQL refuses them too) and throw.
 */
export async function tlsServerEndPointHash(
  certDer: Uint8Array,
  signatureHashAlgorithm?: string,
): Promise<Uint8Array> {
  const hash = signatureHashAlgorithm === undefined
    ? certificateEndPointHash(certDer)
    : endPointHashFor(signatureHashAlgorithm);
  return new Uint8Array(await crypto.subtle.digest(hash, new Uint8Array(certDer)));
}

/** Normalizes a hash name and applies RFC 5929's MD5/SHA-1 → SHA-256 rule. */
function endPointHashFor(name: string): EndPointHash {
  const normalized = name.toUpperCase().replace(/^SHA-?/, "SHA-");
  switch (normalized) {
    case "MD5":
    case "SHA-1":
    case "SHA-256":
      return "SHA-256";
    case "SHA-384":
    case "SHA-512":
      return normalized;
    default:
      throw new RangeError(
        `unsupported certificate signature hash ${JSON.stringify(name)} for tls-server-end-point`,
      );
  }
}

/** Reads Certificate.signatureAlgorithm (RFC 5280 §4.1.1.2) and maps it. */
export function certificateEndPointHash(certDer: Uint8Array): EndPointHash {
  const certificate = readTlv(certDer, 0, 0x30, "Certificate");
  const tbs = readTlv(certDer, certificate.contentStart, 0x30, "tbsCertificate");
  const algorithm = readTlv(certDer, tbs.end, 0x30, "signatureAlgorithm");
  const oidTlv = readTlv(certDer, algorithm.contentStart, 0x06, "signatureAlgorithm OID");
  const oid = decodeOid(certDer.subarray(oidTlv.contentStart, oidTlv.end));
  const hash = SIGNATURE_HASHES.get(oid);
  if (hash === undefined) {
    throw new RangeError(
      `cannot derive tls-server-end-point data for a certificate signed with ${oid}; ` +
        "pass the signature hash explicitly (RSASSA-PSS) or use an RSA/ECDSA certificate (Ed25519/Ed448 have none)",
    );
  }
  return hash;
}

interface Tlv {
  contentStart: number;
  end: number;
}

/** One DER tag-length-value at `at`, which must carry `tag`. */
function readTlv(der: Uint8Array, at: number, tag: number, what: string): Tlv {
  const bad = (why: string): never => {
    throw new RangeError(`malformed certificate DER: ${what} ${why}`);
  };
  if (der[at] !== tag) bad(`has tag ${der[at] ?? "(end of data)"}, expected ${tag}`);
  let lengthByte = der[at + 1] ?? bad("has no length");
  let contentStart = at + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) bad("has an unsupported length encoding");
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = der[contentStart + i] ?? bad("has a truncated length");
      length = length * 256 + lengthByte;
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > der.length) bad("runs past the end of the data");
  return { contentStart, end };
}

/** BER/DER OBJECT IDENTIFIER content → dotted decimal. */
function decodeOid(content: Uint8Array): string {
  const arcs: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join(".");
}

/**
 * The DER bytes of the first `-----BEGIN CERTIFICATE-----` block in a PEM text (pgrelay's own certificate
 * is the first one in its chain file). Throws a RangeError when there is none or its base64 is broken.
 */
export function pemToDer(pem: string): Uint8Array {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (match === null) throw new RangeError("no PEM certificate (-----BEGIN CERTIFICATE-----) found");
  const der = decodeBase64(match[1]!.replace(/\s+/g, ""));
  if (der === undefined || der.length === 0) {
    throw new RangeError("the PEM certificate's base64 body is malformed");
  }
  return der;
}
