/** A python3 unix-datagram listener that records what pgrelay's sd_notify sends (see notify_listener.py). */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./notify_listener.py", import.meta.url));

export interface NotifyMessage {
  /** The sending process (SCM_CREDENTIALS). */
  pid: number;
  /** The listener's CLOCK_MONOTONIC when it received the message, in microseconds. */
  nowUsec: number;
  text: string;
}

export class NotifyListener {
  readonly messages: NotifyMessage[] = [];
  #child: ChildProcess;
  #stderr = "";
  #waiters = new Set<() => void>();

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /** Binds `address` (a path or "@abstract") and resolves once the socket exists. */
  static start(address: string, timeoutMs = 10_000): Promise<NotifyListener> {
    const child = spawn("python3", [SCRIPT, address], { stdio: ["ignore", "pipe", "pipe"] });
    const listener = new NotifyListener(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`notify listener did not bind ${address} within ${timeoutMs} ms: ${listener.#stderr}`));
      }, timeoutMs);
      let pending = "";
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (text: string) => (listener.#stderr += text));
      child.stdout!.setEncoding("utf8");
      child.stdout!.on("data", (text: string) => {
        pending += text;
        let newline: number;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = JSON.parse(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          if ("bound" in line) {
            clearTimeout(timer);
            resolve(listener);
            continue;
          }
          listener.messages.push({ pid: line.pid, nowUsec: line.now_usec, text: line.text });
          for (const wake of listener.#waiters) wake();
        }
      });
      child.on("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot run python3 (scripts/ensure_test_deps.sh installs it): ${error.message}`));
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`notify listener exited with ${code}: ${listener.#stderr}`));
      });
    });
  }

  /** Resolves with the first message (received so far or later) that `match` accepts. */
  waitFor(match: (message: NotifyMessage) => boolean, timeoutMs = 10_000): Promise<NotifyMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(match);
        if (!found) return false;
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(new Error(`no matching notify message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(wake);
    });
  }

  stop(): void {
    this.#child.kill("SIGKILL");
  }
}
