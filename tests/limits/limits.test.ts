import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SettingError } from "../../src/config/config_error.ts";
import { DEFAULT_CANCEL_RATE, parseBandwidth, parseLimits } from "../../src/limits/limits_schema.ts";
import { TokenBuckets } from "../../src/limits/token_buckets.ts";

describe("limits", () => {
  it("parseLimits() reads the documented example", () => {
    const limits = parseLimits({
      max_connections: 1000,
      per_user: 100,
      per_database: 200,
      per_source: 50,
      connect_rate: { per_source: 20, burst: 40 },
      bandwidth_per_session: "10MB/s",
    });
    assert.deepEqual(limits, {
      maxConnections: 1000,
      perUser: 100,
      perDatabase: 200,
      perSource: 50,
      connectRate: { perSource: 20, burst: 40 },
      cancelRate: undefined,
      bandwidthPerSession: 10_000_000,
    });
    assert.equal(
      parseLimits({ connect_rate: { per_source: 5 } }).connectRate?.burst,
      5,
      "burst defaults to the rate",
    );
  });

  it("parseLimits() names a bad key", () => {
    const pathOf = (raw: unknown) => {
      try {
        parseLimits(raw);
      } catch (error) {
        assert.ok(error instanceof SettingError);
        return error.path.join(".");
      }
      return "";
    };
    assert.equal(pathOf({ per_user: -1 }), "per_user");
    assert.equal(pathOf({ per_user: 1.5 }), "per_user");
    assert.equal(pathOf({ connect_rate: { per_source: 0 } }), "connect_rate.per_source");
    assert.equal(pathOf({ connect_rate: { rate: 1 } }), "connect_rate.rate");
    assert.equal(pathOf({ bandwidth_per_session: "fast" }), "bandwidth_per_session");
    assert.equal(pathOf({ max_conn: 3 }), "max_conn");
  });

  it("parseLimits() reads cancel_rate and says precisely what is wrong with it", () => {
    assert.deepEqual(parseLimits({ cancel_rate: { per_source: 5, burst: 8 } }).cancelRate, { perSource: 5, burst: 8 });
    assert.deepEqual(parseLimits({ cancel_rate: { per_source: 5 } }).cancelRate, { perSource: 5, burst: 5 });
    assert.equal(parseLimits({}).cancelRate, undefined, "unset: the gate applies DEFAULT_CANCEL_RATE");
    assert.deepEqual(DEFAULT_CANCEL_RATE, { perSource: 10, burst: 20 });
    const failure = (raw: unknown) => {
      try {
        parseLimits({ cancel_rate: raw });
      } catch (error) {
        assert.ok(error instanceof SettingError);
        return `${error.path.join(".")}: ${error.message}`;
      }
      return "accepted";
    };
    assert.match(failure(10), /^cancel_rate: expected a mapping such as \{ per_source: 10, burst: 20 \}, got 10/);
    assert.match(failure({ burst: 3 }), /^cancel_rate\.per_source: missing: expected a mapping such as/);
    assert.match(failure({ per_source: 0 }), /^cancel_rate\.per_source: expected a whole number of at least 1, got 0/);
    assert.match(failure({ per_source: 2, burst: 1.5 }), /^cancel_rate\.burst: expected a whole number of at least 1, got 1\.5/);
    assert.match(failure({ per_source: 2, rate: 1 }), /^cancel_rate\.rate: unknown key \(known keys: per_source, burst\)/);
  });

  it("parseBandwidth() takes sizes per second", () => {
    assert.equal(parseBandwidth("10MB/s"), 10_000_000);
    assert.equal(parseBandwidth("512KiB/s"), 524_288);
    assert.equal(parseBandwidth(65536), 65536);
    assert.throws(() => parseBandwidth("10 parsecs"), /expected a rate/);
    assert.throws(() => parseBandwidth(100), /at least 1KiB/);
  });

  it("TokenBuckets allows a burst, then the rate, per key", () => {
    let now = 0;
    const buckets = new TokenBuckets(() => now);
    const take = (key = "a") => buckets.take(key, 2, 3);
    assert.deepEqual([take(), take(), take(), take()], [true, true, true, false], "burst of 3");
    assert.equal(take("b"), true, "another source has its own bucket");
    now += 499;
    assert.equal(take(), false, "0.998 tokens after 499 ms at 2/s");
    now += 1;
    assert.equal(take(), true, "one token after 500 ms");
    assert.equal(take(), false);
    now += 10_000;
    assert.deepEqual(
      [take(), take(), take(), take()],
      [true, true, true, false],
      "refills to the burst, not beyond",
    );
  });
});
