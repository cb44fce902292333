import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** @type {import("next").NextConfig} */
export default {
  // The runtime image holds only this server and the files it traces, not node_modules.
  output: "standalone",
  // Trace from the workspace root, so the shared package's files are part of the output.
  outputFileTracingRoot: join(here, "..", ".."),
  images: { unoptimized: true },
  transpilePackages: ["@penguins/ui"],
  poweredByHeader: false,
  experimental: {
    // TypeScript 7 (native) has no compiler API yet: Next runs its `tsc` instead.
    useTypeScriptCli: true,
    // Turbopack keeps its work in .next/cache between builds (the image build's cache mount), so
    // a rebuild after an edit recompiles what the edit touched.
    turbopackFileSystemCacheForBuild: true,
  },
};
