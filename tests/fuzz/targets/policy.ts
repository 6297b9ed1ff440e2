/**
 * The policy and time-window parsers (from YAML, as the config loader hands them over) and the evaluation
 * of what they accept. Properties: parsePolicy throws only SettingError/SettingErrors, parseTimeWindow only
 * TimeWindowError; a policy or window they accept is evaluated (and explained) without throwing.
 */
import { parseYaml, YamlSyntaxError } from "../../../src/config/yaml.ts";
import { SettingError, SettingErrors } from "../../../src/config/config_error.ts";
import { parsePolicy } from "../../../src/policy/policy_schema.ts";
import { evaluatePolicy, explainDecision } from "../../../src/policy/evaluate.ts";
import { inTimeWindow, parseTimeWindow, TimeWindowError } from "../../../src/policy/time_window.ts";
import { fnv1a } from "../prng.ts";
import { type FuzzTarget, onlyDocumented } from "../target.ts";

const decoder = new TextDecoder();
const SOURCES = ["10.1.2.3", "::1", "::ffff:10.0.0.1", "[fe80::1%eth0]", "", "192.168.0.300", "2001:db8::"];

function yamlValue(input: Uint8Array): { value: unknown } | undefined {
  try {
    return { value: parseYaml(decoder.decode(input)).value };
  } catch (error) {
    onlyDocumented(error, (e) => e instanceof YamlSyntaxError, "parseYaml");
    return undefined;
  }
}

export const policyTarget: FuzzTarget = {
  name: "policy",
  maxLength: 4096,
  dictionary: [
    "default: deny\n",
    "enforce_on_reload: true\n",
    "rules:\n",
    "  - ",
    "name: ",
    "allow: ",
    "deny: ",
    "{ ",
    " }",
    "user: ",
    "database: ",
    "application_name: ",
    "source: ",
    "tls: true",
    "time: ",
    "days: [mon-fri]",
    'between: "09:00-18:00"',
    "tz: Europe/Berlin",
    "10.0.0.0/8",
    "::/0",
    "fe80::/10",
    "*",
    "?",
    "[",
    "]",
    "\\",
    "/33",
    "/129",
    "24:00",
    "23:59-00:00",
  ],
  run(input) {
    const parsed = yamlValue(input);
    if (!parsed) return;
    let policy;
    try {
      policy = parsePolicy(parsed.value);
    } catch (error) {
      onlyDocumented(error, (e) => e instanceof SettingError || e instanceof SettingErrors, "parsePolicy");
      return;
    }
    const hash = fnv1a(input);
    // `replication` is a fact of newer PolicyFacts (absent = not a replication connection before that).
    const facts = {
      user: "alice",
      database: "app",
      applicationName: "psql",
      source: SOURCES[hash % SOURCES.length]!,
      tls: (hash & 1) === 1,
      now: new Date(Date.UTC(2026, 0, 1 + (hash % 14), hash % 24, hash % 60)),
      replication: (["false", "true", "database"] as const)[hash % 3],
    } as unknown as Parameters<typeof evaluatePolicy>[1];
    try {
      evaluatePolicy(policy, facts);
      explainDecision(policy, facts);
    } catch (error) {
      onlyDocumented(error, () => false, "evaluatePolicy");
    }
  },
};

export const timeWindowTarget: FuzzTarget = {
  name: "time_window",
  maxLength: 1024,
  dictionary: [
    "days: ",
    "between: ",
    "tz: ",
    "[",
    "]",
    "mon",
    "-",
    "sun-sat",
    "fri-mon",
    "00:00",
    "24:00",
    "99:99",
    "UTC",
    "Etc/GMT+14",
    "America/St_Johns",
    '"',
    ",",
    "\n",
  ],
  run(input) {
    const parsed = yamlValue(input);
    if (!parsed) return;
    let window;
    try {
      window = parseTimeWindow(parsed.value);
    } catch (error) {
      onlyDocumented(error, (e) => e instanceof TimeWindowError, "parseTimeWindow");
      return;
    }
    const hash = fnv1a(input);
    try {
      inTimeWindow(window, new Date(Date.UTC(2026, 2, 1 + (hash % 60), hash % 24, hash % 60)));
    } catch (error) {
      onlyDocumented(error, () => false, "inTimeWindow");
    }
  },
};
