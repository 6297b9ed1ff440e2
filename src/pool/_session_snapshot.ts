/** The committed session state of session_state.ts: settings and what pins, and how each operation changes it. */
import { NOT_REPLAYED } from "./guc_settings.ts";
import type { PinReason } from "./pin_reasons.ts";
import type { SessionOp } from "./session_commands.ts";

export class SessionSnapshot {
  /** Unreported settings: lower-cased name → stored value. */
  settings: Map<string, string>;
  readonly listen = new Set<string>();
  readonly temp = new Set<string>();
  readonly cursors = new Set<string>();
  readonly prepared = new Set<string>();
  /** Advisory locks by "mode:key" → times taken (they nest). */
  readonly locks = new Map<string, number>();
  /** Locks taken with keys pgrelay could not read: only unlock_all releases them. */
  unknownLocks = 0;
  load = false;
  role = false;
  authorization = false;

  constructor(settings: ReadonlyMap<string, string>) {
    this.settings = new Map(settings);
  }

  /** True while the state behind `reason` exists. */
  holds(reason: PinReason): boolean {
    switch (reason) {
      case "listen":
        return this.listen.size > 0;
      case "advisory_lock":
        return this.locks.size > 0 || this.unknownLocks > 0;
      case "temp_table":
        return this.temp.size > 0;
      case "with_hold_cursor":
        return this.cursors.size > 0;
      case "sql_prepare":
        return this.prepared.size > 0;
      case "set_role":
        return this.role || this.authorization;
      case "load":
        return this.load;
      case "protocol_prepare":
        return false; // the frontend tracks the client's named statements itself
    }
  }

  /**
   * Applies one state operation (not transaction control). `baseline` holds the values RESET returns to;
   * `reported(name)` is true for settings the server reports itself (their SET text is ignored).
   */
  apply(op: SessionOp, baseline: ReadonlyMap<string, string>, reported: (name: string) => boolean): void {
    switch (op.op) {
      case "set":
        if (!reported(op.name) && !NOT_REPLAYED.has(op.name)) this.settings.set(op.name, op.value);
        break;
      case "reset": {
        if (reported(op.name)) break;
        const value = baseline.get(op.name);
        if (value === undefined) this.settings.delete(op.name);
        else this.settings.set(op.name, value);
        break;
      }
      case "reset_all":
        this.settings = new Map(baseline);
        break;
      case "listen":
        this.listen.add(op.channel);
        break;
      case "unlisten":
        if (op.channel === null) this.listen.clear();
        else this.listen.delete(op.channel);
        break;
      case "temp":
        this.temp.add(op.name);
        break;
      case "drop":
        for (const name of op.names) this.temp.delete(name);
        break;
      case "discard_temp":
        this.temp.clear();
        break;
      case "hold_cursor":
        this.cursors.add(op.name);
        break;
      case "close":
        if (op.name === null) this.cursors.clear();
        else this.cursors.delete(op.name);
        break;
      case "role":
        this.role = op.set;
        break;
      case "session_authorization":
        this.authorization = op.set;
        this.role = false; // SET SESSION AUTHORIZATION (DEFAULT too) resets the role
        break;
      case "prepare":
        this.prepared.add(op.name);
        break;
      case "deallocate":
        if (op.name === null) this.prepared.clear();
        else this.prepared.delete(op.name);
        break;
      case "lock":
        if (op.key === null) this.unknownLocks++;
        else this.locks.set(op.key, (this.locks.get(op.key) ?? 0) + 1);
        break;
      case "unlock": {
        const count = this.locks.get(op.key);
        if (count === undefined) break;
        if (count <= 1) this.locks.delete(op.key);
        else this.locks.set(op.key, count - 1);
        break;
      }
      case "unlock_all":
        this.locks.clear();
        this.unknownLocks = 0;
        break;
      case "load":
        this.load = true;
        break;
      default:
        break; // transaction control is the caller's
    }
  }
}
