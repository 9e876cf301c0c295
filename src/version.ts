// The server's version, from package.json, so the binary carries it.

import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
