import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** @type {import("next").NextConfig} */
export default {
  // The runtime image holds only this server and the files it traces, not node_modules.
  output: "standalone",
  // Trace from the workspace root, so the shared package's files are part of the output.
  outputFileTracingRoot: join(here, "..", ".."),
  // Build and test tools never run in the server, nor sharp (libvips, 19 MB of native code): the
  // app shows no images to optimize. Leaving them out of the trace makes the runtime image smaller.
  outputFileTracingExcludes: {
    "*": [
      "**/node_modules/.pnpm/{typescript,vitest,vite,esbuild,@esbuild+*,rollup,@rollup+*,@vitest+*}@*/**",
      "**/node_modules/.pnpm/{sharp,@img+*}@*/**",
    ],
  },
  images: { unoptimized: true },
  transpilePackages: ["@penguins/ui"],
  // Linting belongs to the developer's loop, not to an image build with no network.
  eslint: { ignoreDuringBuilds: true },
  poweredByHeader: false,
  // The trace of Next's own server (about 1,900 files, single-threaded; tools/trace-cache.cjs
  // keeps its analyses between builds) starts in a worker as soon as the server is compiled, so it
  // overlaps the rest of the build.
  experimental: { parallelServerBuildTraces: true, parallelServerCompiles: true },
};
