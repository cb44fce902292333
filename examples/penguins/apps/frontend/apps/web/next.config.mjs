import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** @type {import("next").NextConfig} */
export default {
  // The runtime image holds only this server and the files it traces, not node_modules.
  output: "standalone",
  // Trace from the workspace root, so the shared package's files are part of the output.
  outputFileTracingRoot: join(here, "..", ".."),
  transpilePackages: ["@penguins/ui"],
  // Linting belongs to the developer's loop, not to an image build with no network.
  eslint: { ignoreDuringBuilds: true },
  poweredByHeader: false,
};
