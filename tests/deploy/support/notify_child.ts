/**
 * Run by tests/deploy/sd_notify.test.ts as a child process on the runtime under test: sends each argument
 * (with "\n" written as a backslash-n) through notifySystemd in order, then prints {pid, results} as JSON.
 */
import process from "node:process";
import { notifySystemd } from "../../../src/host/sd_notify.ts";

const results: boolean[] = [];
for (const state of process.argv.slice(2)) results.push(await notifySystemd(state.replaceAll("\\n", "\n")));
process.stdout.write(JSON.stringify({ pid: process.pid, results }) + "\n");
