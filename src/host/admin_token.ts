/**
 * The admin API's bearer token: read from `admin.token_file` (which, like auth.file, group and others must
 * not be able to read), at startup, by `--check`, and again on every SIGHUP.
 */
import { ConfigError } from "../config/config_error.ts";
import type { Config } from "./config_schema.ts";
import { readSecretFile } from "./secret_file.ts";

/** Tokens shorter than this are refused: the token is all that guards the API on a non-loopback address. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** The token of `config`, or undefined when admin.token_file is unset. Throws ConfigError naming the file. */
export async function readAdminToken(config: Config): Promise<string | undefined> {
  const path = config.adminTokenFile;
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await readSecretFile(path);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason = code === "ENOENT"
      ? "no such file"
      : code === "EACCES"
      ? "permission denied"
      : (error as Error).message;
    throw new ConfigError([{ key: "admin.token_file", message: `"${path}": ${reason}` }]);
  }
  const token = text.trim();
  if (token.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new ConfigError([{
      key: "admin.token_file",
      message:
        `"${path}" must hold one token of at least ${MIN_ADMIN_TOKEN_LENGTH} characters without spaces; ` +
        "e.g. run: openssl rand -hex 32 > FILE && chmod 600 FILE",
    }]);
  }
  return token;
}
