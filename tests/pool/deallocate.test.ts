import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readDeallocate } from "../../src/pool/_deallocate.ts";

const q = (sql: string) => readDeallocate(new TextEncoder().encode(`${sql}\0`));

describe("readDeallocate()", () => {
  it("recognizes DEALLOCATE name, folding unquoted names to lower case", () => {
    assert.deepEqual(q("DEALLOCATE s1"), { all: false, name: "s1" });
    assert.deepEqual(q("  deallocate PREPARE My_Stmt$2 ;  "), { all: false, name: "my_stmt$2" });
    assert.deepEqual(q('DEALLOCATE "Quoted ""x"""'), { all: false, name: 'Quoted "x"' });
    assert.deepEqual(q("-- why\nDEALLOCATE /* a /* nested */ comment */ pdo_stmt_00000001"), { all: false, name: "pdo_stmt_00000001" });
  });

  it("recognizes DEALLOCATE ALL, DEALLOCATE PREPARE ALL and DISCARD ALL", () => {
    assert.deepEqual(q("DEALLOCATE ALL"), { all: true });
    assert.deepEqual(q("deallocate prepare all;"), { all: true });
    assert.deepEqual(q("DISCARD ALL"), { all: true });
    assert.deepEqual(q('DEALLOCATE "all"'), { all: false, name: "all" });
  });

  it("ignores anything else, batches included", () => {
    for (const sql of ["SELECT 1", "DISCARD PLANS", "DEALLOCATE", "DEALLOCATE s1; SELECT 1", "DEALLOCATE s1 s2", "DEALLOCATEx s1", "DISCARD ALL; DISCARD ALL", "/* unterminated DEALLOCATE s1", "DELETE FROM t", "DEALLOCATE 1x", 'DEALLOCATE ""']) {
      assert.equal(q(sql), undefined, sql);
    }
  });
});
