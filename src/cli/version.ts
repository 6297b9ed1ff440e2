import packageJson from "../../package.json" with { type: "json" };

/** pgrelay's version, embedded in compiled binaries from package.json. */
export const VERSION: string = packageJson.version;
