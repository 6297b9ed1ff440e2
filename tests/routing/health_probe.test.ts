import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  HEALTH_COLUMNS,
  HEALTH_QUERY,
  HealthProbeError,
  lagBytes,
  parseHealthRow,
  parseLsn,
  timelineOfWalFile,
} from "../../src/routing/health_probe.ts";

describe("health probe", () => {
  it("parses LSNs X/Y into 64-bit positions", () => {
    assert.equal(parseLsn("0/0"), 0n);
    assert.equal(parseLsn("0/3000148"), 0x3000148n);
    assert.equal(parseLsn("16/B374D848"), 0x16_B374D848n);
    assert.equal(parseLsn("FFFFFFFF/FFFFFFFF"), 0xFFFFFFFF_FFFFFFFFn);
    for (const bad of ["", "16", "16/", "/1", "1/2/3", "G/0", "123456789/0", " 0/1"]) {
      assert.throws(() => parseLsn(bad), HealthProbeError, bad);
    }
  });

  it("measures lag as the primary's position minus the standby's, never negative", () => {
    assert.equal(lagBytes(parseLsn("1/0"), parseLsn("0/FFFFFF00")), 256n);
    assert.equal(lagBytes(parseLsn("0/10"), parseLsn("0/20")), 0n);
  });

  it("reads a primary's timeline from its WAL file name", () => {
    assert.equal(timelineOfWalFile("000000010000000000000003"), 1);
    assert.equal(timelineOfWalFile("0000000A0000001600000099"), 10);
    assert.throws(() => timelineOfWalFile("00000001"), HealthProbeError);
  });

  it("turns a primary's row into a check result", () => {
    assert.deepEqual(parseHealthRow(["f", "0/3000148", "000000020000000000000003", null]), {
      role: "primary",
      lsn: 0x3000148n,
      timeline: 2,
    });
  });

  it("turns a standby's row into a check result, with or without a WAL receiver", () => {
    assert.deepEqual(parseHealthRow(["t", "0/3000060", null, "2"]), {
      role: "standby",
      lsn: 0x3000060n,
      timeline: 2,
    });
    assert.deepEqual(parseHealthRow(["t", null, null, null]), {
      role: "standby",
      lsn: undefined,
      timeline: undefined,
    });
  });

  it("fails the check on an answer it cannot read", () => {
    assert.throws(() => parseHealthRow(["f", "0/1"]), /answered 2 columns, expected 4/);
    assert.throws(() => parseHealthRow(["yes", "0/1", null, null]), /pg_is_in_recovery\(\) answered "yes"/);
    assert.throws(() => parseHealthRow(["f", null, "000000010000000000000001", null]), /no WAL position/);
    assert.throws(() => parseHealthRow(["f", "0/1", null, null]), /no WAL file/);
    assert.throws(() => parseHealthRow(["t", "0/1", null, "two"]), /received_tli "two"/);
  });

  it("asks for the four columns in one statement", () => {
    assert.deepEqual(HEALTH_COLUMNS, ["in_recovery", "lsn", "walfile", "received_tli"]);
    assert.ok(!HEALTH_QUERY.includes(";"), "one statement, one round trip");
  });
});
