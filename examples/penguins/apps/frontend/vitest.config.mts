import { defineConfig } from "vitest/config";

// One Vitest for the whole workspace (`pnpm test` here): each package is a project, with its own
// root and its own Vite or Vitest configuration if it has one. One process instead of one per
// package saves a second of every image build, where the tests run beside `next build`.
export default defineConfig({
  test: { projects: ["apps/*", "packages/*"] },
});
