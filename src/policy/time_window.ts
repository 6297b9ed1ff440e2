/**
 * Time windows for policy rules: `{ days: [mon-fri], between: "09:00-18:00", tz: "Europe/Berlin" }`.
 * `days` takes day names and ranges (`mon`, `sat-sun`, `fri-mon` wraps); `between` is `HH:MM-HH:MM`, the start
 * included and the end excluded; a window whose end is not after its start crosses midnight and belongs to the
 * day it starts on. `tz` is an IANA zone, UTC by default. Either `days` or `between` may be left out.
 */

export const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

export interface TimeWindow {
  /** Seven flags, Sunday first. */
  readonly days: readonly boolean[];
  /** Minutes after midnight; undefined: all day. */
  readonly from: number | undefined;
  readonly to: number | undefined;
  readonly tz: string;
  readonly text: string;
}

const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(tz: string): Intl.DateTimeFormat {
  let formatter = formatters.get(tz);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(tz, formatter);
  }
  return formatter;
}

/** The weekday (0 = Sunday) and minute of the day of `now` in `tz`. */
export function localTime(now: Date, tz: string): { day: number; minute: number } {
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(tz).formatToParts(now)) {
    if (part.type === "weekday") day = WEEKDAY_INDEX[part.value] ?? 0;
    else if (part.type === "hour") hour = Number(part.value) % 24;
    else if (part.type === "minute") minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

/** Validates a raw `time:` mapping. Throws an error whose `key` names the bad sub-key. */
export function parseTimeWindow(raw: unknown): TimeWindow {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new TimeWindowError(
      "",
      'expected a mapping such as { days: [mon-fri], between: "09:00-18:00", tz: "UTC" }',
    );
  }
  const entries = raw as Record<string, unknown>;
  for (const key of Object.keys(entries)) {
    if (!["days", "between", "tz"].includes(key)) {
      throw new TimeWindowError(key, "unknown key (known keys: days, between, tz)");
    }
  }
  const days = new Array<boolean>(7).fill(entries.days === undefined);
  if (entries.days !== undefined) {
    const list = Array.isArray(entries.days) ? entries.days : [entries.days];
    for (const item of list) {
      const match = typeof item === "string" ? /^\s*([a-z]{3})\s*(?:-\s*([a-z]{3})\s*)?$/i.exec(item) : null;
      const first = match ? DAY_NAMES.indexOf(match[1]!.toLowerCase() as typeof DAY_NAMES[number]) : -1;
      const last = match?.[2] ? DAY_NAMES.indexOf(match[2].toLowerCase() as typeof DAY_NAMES[number]) : first;
      if (first < 0 || last < 0) {
        throw new TimeWindowError(
          "days",
          `expected day names or ranges such as mon, sat-sun or mon-fri, got ${JSON.stringify(item)}`,
        );
      }
      for (let day = first;; day = (day + 1) % 7) {
        days[day] = true;
        if (day === last) break;
      }
    }
  }
  let from: number | undefined;
  let to: number | undefined;
  if (entries.between !== undefined) {
    const match = typeof entries.between === "string"
      ? /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(entries.between)
      : null;
    const minutes = match
      ? [Number(match[1]) * 60 + Number(match[2]), Number(match[3]) * 60 + Number(match[4])]
      : [];
    if (
      !match || Number(match[2]) > 59 || Number(match[4]) > 59 || minutes[0]! > 1440 || minutes[1]! > 1440
    ) {
      throw new TimeWindowError(
        "between",
        `expected "HH:MM-HH:MM" such as "09:00-18:00", got ${JSON.stringify(entries.between)}`,
      );
    }
    from = minutes[0]!;
    to = minutes[1]!;
  }
  const tz = entries.tz === undefined ? "UTC" : entries.tz;
  if (typeof tz !== "string") {
    throw new TimeWindowError(
      "tz",
      `expected a time zone name such as "UTC" or "Europe/Berlin", got ${JSON.stringify(tz)}`,
    );
  }
  try {
    formatterFor(tz);
  } catch {
    throw new TimeWindowError("tz", `unknown time zone "${tz}"`);
  }
  const text = [
    entries.days === undefined
      ? undefined
      : `days ${(Array.isArray(entries.days) ? entries.days : [entries.days]).join(",")}`,
    entries.between === undefined ? undefined : `between ${entries.between}`,
    `tz ${tz}`,
  ].filter((part) => part !== undefined).join(" ");
  return { days, from, to, tz, text };
}

export class TimeWindowError extends RangeError {
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = "TimeWindowError";
    this.key = key;
  }
}

/** True when `now` falls inside the window. */
export function inTimeWindow(window: TimeWindow, now: Date): boolean {
  const { day, minute } = localTime(now, window.tz);
  if (window.from === undefined || window.to === undefined) return window.days[day] === true;
  if (window.from < window.to) {
    return window.days[day] === true && minute >= window.from && minute < window.to;
  }
  // Crosses midnight: the evening part belongs to today, the early-morning part to yesterday's window.
  if (minute >= window.from) return window.days[day] === true;
  if (minute < window.to) return window.days[(day + 6) % 7] === true;
  return false;
}
