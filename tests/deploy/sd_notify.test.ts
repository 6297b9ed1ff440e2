/**
 * src/host/sd_notify.ts against a real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET
 * (python3, tests/deploy/support/notify_listener.py). The default path runs in a child process on the
 * runtime under test, so NOTIFY_SOCKET comes from the environment exactly as under systemd.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { notifySystemd, sockaddrUn } from "../../src/host/sd_notify.ts";
import { RUNTIME } from "../support/pgrelay.ts";
import { runProcess } from "../support/process.ts";
import { NotifyListener } from "./support/notify_listener.ts";

const CHILD = fileURLToPath(new URL("./support/notify_child.ts", import.meta.url));

/** Runs notify_child.ts on this runtime with NOTIFY_SOCKET set (or removed when undefined). */
async function notifyFromChild(socket: string | undefined, states: string[]): Promise<{ pid: number; results: boolean[] }> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env["NOTIFY_SOCKET"];
  if (socket !== undefined) env["NOTIFY_SOCKET"] = socket;
  const [command, args] = RUNTIME === "deno"
    ? [process.execPath, ["run", "-A", CHILD, ...states]]
    : [process.execPath, [CHILD, ...states]];
  const result = await runProcess(command, args, { env, timeoutMs: 30_000 });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

describe(`sd_notify on ${RUNTIME}`, () => {
  let dir = "";
  let socket = "";
  let listener: NotifyListener;
  const abstractName = `@pgrelay-test-${process.pid}-${Date.now()}`;
  let abstractListener: NotifyListener;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-notify-"));
    socket = join(dir, "notify.sock");
    [listener, abstractListener] = await Promise.all([NotifyListener.start(socket), NotifyListener.start(abstractName)]);
  });
  after(async () => {
    listener?.stop();
    abstractListener?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("without NOTIFY_SOCKET sends nothing and resolves false", async () => {
    const before = listener.messages.length;
    const { results } = await notifyFromChild(undefined, ["READY=1"]);
    assert.deepEqual(results, [false]);
    assert.equal(await notifySystemd("READY=1", { socket: "" }), false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(listener.messages.length, before);
  });

  it("READY=1 arrives from the process itself (libc through FFI, no helper process)", async () => {
    const { pid, results } = await notifyFromChild(socket, ["READY=1"]);
    assert.deepEqual(results, [true]);
    const message = await listener.waitFor((m) => m.pid === pid);
    assert.equal(message.text, "READY=1");
  });

  it("RELOADING=1 carries MONOTONIC_USEC from CLOCK_MONOTONIC, and messages keep their order", async () => {
    const { pid, results } = await notifyFromChild(socket, ["RELOADING=1", "READY=1", "STOPPING=1\\nSTATUS=draining"]);
    assert.deepEqual(results, [true, true, true]);
    await listener.waitFor((m) => m.pid === pid && m.text.startsWith("STOPPING=1"));
    const texts = listener.messages.filter((m) => m.pid === pid);
    assert.deepEqual(texts.map((m) => m.text.split("\n")[0]), ["RELOADING=1", "READY=1", "STOPPING=1"]);
    assert.equal(texts[2]!.text, "STOPPING=1\nSTATUS=draining");
    const match = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(texts[0]!.text);
    assert.ok(match, `RELOADING=1 message: ${JSON.stringify(texts[0]!.text)}`);
    // Sent before the listener read it, and on the same clock: process-relative clocks would be far off.
    const lagUsec = texts[0]!.nowUsec - Number(match[1]);
    assert.ok(lagUsec >= 0 && lagUsec < 5_000_000, `MONOTONIC_USEC ${match[1]} vs listener ${texts[0]!.nowUsec}`);
  });

  it("a MONOTONIC_USEC given by the caller is kept", async () => {
    assert.equal(await notifySystemd("RELOADING=1\nMONOTONIC_USEC=42", { socket }), true);
    await listener.waitFor((m) => m.pid === process.pid && m.text === "RELOADING=1\nMONOTONIC_USEC=42");
  });

  it("an abstract-namespace socket (@name) works", async () => {
    const { pid, results } = await notifyFromChild(abstractName, ["READY=1"]);
    assert.deepEqual(results, [true]);
    assert.equal((await abstractListener.waitFor((m) => m.pid === pid)).text, "READY=1");
  });

  it("the systemd-notify fallback delivers READY=1 with MAINPID", async () => {
    assert.equal(await notifySystemd("READY=1", { socket, via: "systemd-notify" }), true);
    const message = await listener.waitFor((m) => m.text.includes("READY=1") && m.text.includes("MAINPID="));
    assert.equal(message.text, `MAINPID=${process.pid}\nREADY=1`);
  });

  it("a socket nobody listens on, a relative or an over-long path resolve false instead of throwing", async () => {
    const missing = join(dir, "nobody.sock");
    assert.equal(await notifySystemd("READY=1", { socket: missing }), false);
    assert.equal(await notifySystemd("READY=1", { socket: missing, via: "systemd-notify" }), false);
    assert.equal(await notifySystemd("READY=1", { socket: "relative.sock" }), false);
    assert.equal(await notifySystemd("READY=1", { socket: "/" + "x".repeat(120) }), false);
  });

  it("sockaddr_un: a path ends in NUL, an abstract name starts with one", () => {
    assert.deepEqual([...sockaddrUn("/run/n")!], [1, 0, ...new TextEncoder().encode("/run/n"), 0]);
    assert.deepEqual([...sockaddrUn("@n")!], [1, 0, 0, "n".charCodeAt(0)]);
    assert.equal(sockaddrUn("/" + "x".repeat(106))!.length, 2 + 108);
    assert.equal(sockaddrUn("/" + "x".repeat(107)), undefined);
  });
});
