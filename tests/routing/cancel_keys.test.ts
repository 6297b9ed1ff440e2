import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type BackendKey,
  CancelKeyRegistry,
  MAX_WORKER_ID,
  workerOfProcessId,
} from "../../src/routing/cancel_keys.ts";

/** A stand-in for a server connection: only its real key matters here. */
interface FakeServer {
  name: string;
  key: BackendKey | undefined;
}
const server = (name: string, secretLength = 4): FakeServer => ({
  name,
  key: { processId: 1000 + name.length, secretKey: new Uint8Array(secretLength).fill(name.charCodeAt(0)) },
});
const registry = (workerId = 3, capacity = 100) =>
  new CancelKeyRegistry<FakeServer>({ workerId, capacity, keyOf: (s) => s.key });

describe("pgrelay-issued cancel keys", () => {
  it("issue random keys of the server's secret length (4 for 3.0, 32 for PostgreSQL 18, up to 256)", () => {
    const keys = registry();
    for (const length of [4, 32, 256]) {
      const issued = keys.issue(length);
      assert.equal(issued.secretKey.length, length);
    }
    assert.throws(() => keys.issue(3), /4 to 256 bytes, got 3/);
    assert.throws(() => keys.issue(257), /4 to 256 bytes, got 257/);
    const a = keys.issue(32);
    const b = keys.issue(32);
    assert.notDeepEqual(a.secretKey, b.secretKey);
    assert.notEqual(a.processId, b.processId);
  });

  it("encode the worker id in a positive process id, so any worker can tell the owner", () => {
    for (const workerId of [0, 1, 7, MAX_WORKER_ID]) {
      const keys = registry(workerId);
      for (let i = 0; i < 50; i++) {
        const { processId } = keys.issue(4);
        assert.ok(Number.isInteger(processId) && processId > 0 && processId <= 0x7fffffff, String(processId));
        assert.equal(workerOfProcessId(processId), workerId);
        assert.ok(keys.ownsProcessId(processId));
      }
    }
    const other = registry(5).issue(4);
    assert.equal(registry(3).ownsProcessId(other.processId), false);
    assert.throws(() => registry(MAX_WORKER_ID + 1), /worker id must be 0 to 255/);
  });

  it("resolve a CancelRequest to the server bound now, with the server's real key", () => {
    const keys = registry();
    const first = server("a");
    const second = server("bb", 32);
    const issued = keys.issue(4, first);
    const copy = issued.secretKey.slice(); // as it arrives in a CancelRequest
    assert.deepEqual(keys.resolve(issued.processId, copy), { server: first, key: first.key });
    issued.bind(second); // failover, or a pool lending another connection
    assert.deepEqual(keys.resolve(issued.processId, copy), { server: second, key: second.key });
    issued.bind(null); // idle in a pool: nothing to cancel
    assert.equal(keys.resolve(issued.processId, copy), undefined);
  });

  it("resolve unknown, wrong-secret, stale and keyless requests to nothing", () => {
    const keys = registry();
    const bound = server("a");
    const issued = keys.issue(4, bound);
    const secret = issued.secretKey.slice();
    assert.equal(keys.resolve(issued.processId + 1, secret), undefined, "unknown pid");
    const wrong = secret.slice();
    wrong[0] = wrong[0]! ^ 1;
    assert.equal(keys.resolve(issued.processId, wrong), undefined, "wrong secret");
    assert.equal(keys.resolve(issued.processId, secret.subarray(0, 3)), undefined, "short secret");
    const keyless = keys.issue(4, { name: "new", key: undefined });
    assert.equal(
      keys.resolve(keyless.processId, keyless.secretKey),
      undefined,
      "server sent no BackendKeyData",
    );
    issued.forget();
    assert.equal(keys.resolve(issued.processId, secret), undefined, "stale: the client ended");
    issued.bind(bound);
    assert.equal(keys.resolve(issued.processId, secret), undefined, "a forgotten key cannot be rebound");
  });

  it("hold one entry per live client and forget keys when clients end", () => {
    const keys = registry(3, 3);
    const issued = [keys.issue(4), keys.issue(4), keys.issue(4)];
    assert.equal(keys.size, 3);
    assert.throws(() => keys.issue(4), /full \(3 live keys\)/);
    issued[1]!.forget();
    issued[1]!.forget();
    assert.equal(keys.size, 2);
    assert.equal(issued[1]!.live, false);
    const again = keys.issue(4);
    assert.equal(keys.size, 3);
    for (const key of [...issued, again]) key.forget();
    assert.equal(keys.size, 0);
  });
});
