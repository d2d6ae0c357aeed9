/**
 * The dashboard's build: `npm run build:dashboard` (run by `npm install` and `npm pack`) writes dashboard/dist, which
 * every node serves at `/` (src/http/routes/home.ts). Asset URLs are relative (`base: "./"`): the node puts a
 * `<base href>` with its mount prefix in the page, so one build works at `/`, `/conveyor/` or anywhere.
 *
 * `npm run dev:dashboard` serves it with hot reload on :5173, proxying /api (and its WebSocket) to a node on :4000.
 */
import { readFileSync } from "node:fs";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

export default defineConfig({
  root: import.meta.dirname,
  base: "./",
  plugins: [react()],
  define: { __CONVEYOR_VERSION__: JSON.stringify(version) },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 600,
  },
  server: {
    port: 5173,
    proxy: { "/api": { target: "http://127.0.0.1:4000", ws: true } },
  },
});
