/**
 * `npm run build`, which `npm pack` and `npm publish` run first (prepack): the package's JavaScript and type
 * declarations in dist/, compiled from src/ without its tests, beside the SQL files the stores read at run time.
 * An installed Conveyor runs this output, since Node strips types from no file under node_modules. A checkout
 * does not need it: `npm start` and `npm test` run the TypeScript sources.
 */
import { execFileSync } from "node:child_process";
import { cpSync, globSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
rmSync(`${root}dist`, { recursive: true, force: true });
execFileSync(`${root}node_modules/.bin/tsc`, ["-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
for (const file of globSync("**/*.sql", { cwd: `${root}src` })) cpSync(`${root}src/${file}`, `${root}dist/${file}`);
