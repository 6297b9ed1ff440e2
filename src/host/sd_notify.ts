/**
 * sd_notify(3) for pgrelay under systemd (`Type=notify`): READY=1 once listening, RELOADING=1 on SIGHUP,
 * STOPPING=1 when draining. Without NOTIFY_SOCKET (not started by systemd) it does nothing.
 *
 * The notify socket is an AF_UNIX SOCK_DGRAM socket (a path, or "@name" in the abstract namespace). What
 * can send to it, measured on Deno 2.9.6 and Bun 1.4.5 (Debian 12, systemd 252):
 *
 * | way                                                   | Deno 2.9                         | Bun 1.4            |
 * |-------------------------------------------------------|----------------------------------|--------------------|
 * | node:dgram                                            | UDP only                         | UDP only           |
 * | node:net `connect({ path })`                          | SOCK_STREAM: EPROTOTYPE on a dgram socket             |
 * | `Deno.listenDatagram({ transport: "unixpacket" })`    | works, only with --unstable-net, and must bind a path of its own | n/a |
 * | `Bun.udpSocket({ unix })`                             | n/a                              | ignores `unix`, binds UDP |
 * | libc through FFI: socket() + sendto() (used)          | works (`Deno.dlopen`, stable, needs --allow-ffi, in -A and in compiled binaries) | works (`bun:ffi`) |
 * | `systemd-notify --pid=PID STATE` child (fallback)     | works (needs --allow-run)        | works              |
 *
 * So the native way is libc via FFI on both runtimes: the datagram comes from pgrelay's own pid (systemd
 * attributes it without races, NotifyAccess=main would do), abstract sockets work, and CLOCK_MONOTONIC
 * (clock_gettime) is available for RELOADING=1's MONOTONIC_USEC. Neither runtime exposes CLOCK_MONOTONIC
 * otherwise: `process.hrtime()` and `performance.now()` count from process start in both.
 *
 * The fallback, used only when FFI cannot be loaded (Deno without --allow-ffi; no libc under a known name;
 * bun:ffi under W^X memory, e.g. MemoryDenyWriteExecute=yes, since it compiles its trampolines with TinyCC),
 * runs `systemd-notify`. Its message comes from another pid, which is why deploy/pgrelay.service says
 * NotifyAccess=all; systemd-notify (v246+) waits with BARRIER=1 until the manager has processed it, so the
 * short-lived sender is still attributed to the unit. It cannot read CLOCK_MONOTONIC for us: RELOADING=1
 * goes through `systemd-notify --reloading` (which adds MONOTONIC_USEC) on systemd 253+, and without
 * MONOTONIC_USEC on older systemd, which does not use it (Type=notify-reload arrived in 253).
 *
 * A failed send resolves false and never throws: readiness notification must not take the proxy down.
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";

/** The states pgrelay sends; any other sd_notify assignment lines ("STATUS=...") pass through. */
export type NotifyState = "READY=1" | "RELOADING=1" | "STOPPING=1" | string;

/** Which way a notification went (for tests and diagnostics). */
export type NotifyVia = "ffi" | "systemd-notify";

export interface NotifyOptions {
  /** The socket to notify; defaults to the NOTIFY_SOCKET environment variable. */
  socket?: string | undefined;
  /** Force one way instead of FFI-then-fallback. */
  via?: NotifyVia;
}

/**
 * Sends `state` (one or more `KEY=VALUE` lines) to systemd's notify socket. Resolves false when
 * NOTIFY_SOCKET is unset or the message could not be sent, true once it was sent.
 * RELOADING=1 gets MONOTONIC_USEC= added when the state does not carry one.
 */
export function notifySystemd(state: NotifyState, options: NotifyOptions = {}): Promise<boolean> {
  const socket = options.socket ?? process.env["NOTIFY_SOCKET"];
  if (socket === undefined || socket === "") return Promise.resolve(false);
  // One at a time, in call order: RELOADING=1 then READY=1 must not overtake each other.
  const sent = queue.then(() => send(socket, state, options.via)).catch(() => false);
  queue = sent;
  return sent;
}

let queue: Promise<boolean> = Promise.resolve(true);

async function send(socket: string, state: string, via: NotifyVia | undefined): Promise<boolean> {
  if (via !== "systemd-notify") {
    const native = await loadLibc();
    if (native !== undefined) return native.send(socket, withMonotonic(state, native.monotonicUsec));
    if (via === "ffi") return false;
  }
  return await viaSystemdNotify(socket, state);
}

// ---------------------------------------------------------------------------------------------------------
// Native: libc through FFI.

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000; // a full queue fails (EAGAIN) instead of blocking the event loop
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const CLOCK_MONOTONIC = 1;
const SUN_PATH_MAX = 108; // sizeof(sockaddr_un.sun_path) on Linux
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

/** The five libc calls, bound for the running runtime. */
interface LibcCalls {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number): number;
  close(fd: number): number;
  clockGettime(clock: number, timespec: Uint8Array): number;
}

interface NativeNotifier {
  send(socket: string, message: string): boolean;
  monotonicUsec(): bigint | undefined;
}

let libc: Promise<NativeNotifier | undefined> | undefined;

function loadLibc(): Promise<NativeNotifier | undefined> {
  libc ??= bindLibc().then((calls) => (calls === undefined ? undefined : nativeNotifier(calls)));
  return libc;
}

function nativeNotifier(calls: LibcCalls): NativeNotifier {
  return {
    send(socket, message) {
      const address = sockaddrUn(socket);
      if (address === undefined) return false;
      const fd = calls.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) return false;
      try {
        const bytes = new TextEncoder().encode(message);
        return calls.sendto(fd, bytes, bytes.length, MSG_NOSIGNAL, address, address.length) === bytes.length;
      } finally {
        calls.close(fd);
      }
    },
    monotonicUsec() {
      const timespec = new Uint8Array(16); // struct timespec { int64 tv_sec; int64 tv_nsec; } on 64-bit Linux
      if (calls.clockGettime(CLOCK_MONOTONIC, timespec) !== 0) return undefined;
      const view = new DataView(timespec.buffer);
      return view.getBigInt64(0, true) * 1_000_000n + view.getBigInt64(8, true) / 1000n;
    },
  };
}

/** struct sockaddr_un for a path or an abstract name ("@name"), trimmed to the length the kernel needs. */
export function sockaddrUn(socket: string): Uint8Array | undefined {
  const abstract = socket.startsWith("@");
  const name = new TextEncoder().encode(abstract ? socket.slice(1) : socket);
  // A path needs its terminating NUL; an abstract name is a leading NUL and then exactly its bytes.
  const pathBytes = abstract ? 1 + name.length : name.length + 1;
  if (name.length === 0 || pathBytes > SUN_PATH_MAX) return undefined;
  if (!abstract && !socket.startsWith("/")) return undefined; // sd_notify accepts absolute paths only
  const address = new Uint8Array(2 + pathBytes); // zero-filled: the NULs are already there
  new DataView(address.buffer).setUint16(0, AF_UNIX, true); // sa_family_t in host order (little-endian here)
  address.set(name, abstract ? 3 : 2);
  return address;
}

async function bindLibc(): Promise<LibcCalls | undefined> {
  try {
    if ("Bun" in globalThis) return await bindBunLibc();
    if ("Deno" in globalThis) return bindDenoLibc();
  } catch {
    // No FFI (Deno without --allow-ffi) or no libc under a known name: use the fallback.
  }
  return undefined;
}

/** The part of Deno's FFI used here (declared locally: the types are not in every lib setting). */
interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => number | bigint> };
}

function bindDenoLibc(): LibcCalls | undefined {
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const lib = firstLibc((name) =>
    deno.dlopen(name, {
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
      close: { parameters: ["i32"], result: "i32" },
      clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
    }).symbols
  );
  return lib === undefined ? undefined : libcCalls(lib);
}

/** The part of bun:ffi used here. */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => number | bigint> };
}

async function bindBunLibc(): Promise<LibcCalls | undefined> {
  const specifier = "bun:ffi"; // not a literal, so Deno never tries to resolve it
  const ffi = (await import(specifier)) as BunFfi;
  const lib = firstLibc((name) =>
    ffi.dlopen(name, {
      socket: { args: ["i32", "i32", "i32"], returns: "i32" },
      sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
      close: { args: ["i32"], returns: "i32" },
      clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
    }).symbols
  );
  return lib === undefined ? undefined : libcCalls(lib);
}

type Symbols = Record<string, (...args: unknown[]) => number | bigint>;

function firstLibc(open: (name: string) => Symbols): Symbols | undefined {
  for (const name of LIBC_NAMES) {
    try {
      return open(name);
    } catch (error) {
      // Deno: a missing permission is the same for every name; stop there.
      if ((error as Error).name === "NotCapable" || (error as Error).name === "PermissionDenied") throw error;
    }
  }
  return undefined;
}

function libcCalls(s: Symbols): LibcCalls {
  // 64-bit results arrive as bigint or number depending on runtime and value; compare as numbers.
  const call = (name: string, ...args: unknown[]): number => Number(s[name]!(...args));
  return {
    socket: (domain, type, protocol) => call("socket", domain, type, protocol),
    sendto: (fd, buf, len, flags, addr, addrlen) => call("sendto", fd, buf, BigInt(len), flags, addr, addrlen),
    close: (fd) => call("close", fd),
    clockGettime: (clock, timespec) => call("clock_gettime", clock, timespec),
  };
}

/** Adds MONOTONIC_USEC= to a RELOADING=1 message that lacks one (sd_notify(3)). */
function withMonotonic(state: string, monotonicUsec: () => bigint | undefined): string {
  const lines = state.split("\n");
  if (!lines.includes("RELOADING=1") || lines.some((l) => l.startsWith("MONOTONIC_USEC="))) return state;
  const usec = monotonicUsec();
  return usec === undefined ? state : `${state}\nMONOTONIC_USEC=${usec}`;
}

// ---------------------------------------------------------------------------------------------------------
// Fallback: the systemd-notify program.

let systemdVersion: Promise<number> | undefined;

async function viaSystemdNotify(socket: string, state: string): Promise<boolean> {
  let lines = state.split("\n").filter((line) => line !== "");
  const args = [`--pid=${process.pid}`];
  if (lines.includes("RELOADING=1") && !lines.some((l) => l.startsWith("MONOTONIC_USEC="))) {
    systemdVersion ??= run(["--version"], socket).then((r) => Number(/^systemd (\d+)/.exec(r.stdout)?.[1] ?? 0));
    if ((await systemdVersion) >= 253) {
      args.push("--reloading"); // sends RELOADING=1 and MONOTONIC_USEC= itself
      lines = lines.filter((line) => line !== "RELOADING=1");
    }
  }
  const result = await run([...args, ...lines], socket);
  return result.code === 0;
}

function run(args: string[], socket: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    let stdout = "";
    try {
      const child = spawn("systemd-notify", args, {
        env: { ...process.env, NOTIFY_SOCKET: socket },
        stdio: ["ignore", "pipe", "ignore"],
      });
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (text: string) => (stdout += text));
      child.on("error", () => resolve({ code: -1, stdout }));
      child.on("close", (code) => resolve({ code: code ?? -1, stdout }));
    } catch {
      resolve({ code: -1, stdout }); // Deno without --allow-run throws synchronously
    }
  });
}
