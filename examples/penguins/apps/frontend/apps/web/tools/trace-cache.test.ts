import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { readFile, readlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

type Content = string | Buffer | null;
interface Options {
  base: string;
  processCwd: string;
  readFile?: (name: string) => Promise<Content>;
  readlink?: (name: string) => Promise<string | null>;
  cache?: { analysisCache: Map<string, unknown> };
}
interface Result {
  fileList: Set<string>;
}
type Trace = (files: string[], options: Options) => Promise<Result>;

const require = createRequire(import.meta.url);
const { nodeFileTrace } = require("next/dist/compiled/@vercel/nft") as { nodeFileTrace: Trace };
const { cachedTrace } = require("./trace-cache.cjs") as {
  cachedTrace: (trace: Trace, directory: string, key: string, log: (line: string) => void) => Trace;
};

let root: string;
let made: number[];

/** The real nft, noting how many analyses each trace had to make (none reused). */
const counted: Trace = async (files, options) => {
  const before = options.cache?.analysisCache.size ?? 0;
  const result = await nodeFileTrace(files, options);
  made.push((options.cache?.analysisCache.size ?? 0) - before);
  return result;
};

function write(name: string, text: string): void {
  mkdirSync(dirname(join(root, name)), { recursive: true });
  writeFileSync(join(root, name), text);
}

const fromDisk = async (name: string): Promise<Content> => {
  try {
    return await readFile(name, "utf8");
  } catch {
    return null;
  }
};

async function trace(
  reader = fromDisk,
  readlinks = async (name: string) => readlink(name).catch(() => null),
  key = "next 15.5.29, lockfile 1",
) {
  const traced = cachedTrace(counted, join(root, "cache"), key, () => undefined);
  const options = { base: root, processCwd: root, readFile: reader, readlink: readlinks };
  return [...(await traced([join(root, "app.js")], options)).fileList].sort();
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "trace-cache-"));
  made = [];
  write("app.js", 'require("dep");\n');
  write("node_modules/dep/package.json", '{"name": "dep", "main": "index.js"}');
  write("node_modules/dep/index.js", 'require("./util");\n');
  write("node_modules/dep/util.js", "module.exports = 1;\n");
  write("node_modules/dep/extra.js", "module.exports = 2;\n");
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("the trace cache", () => {
  it("reuses a dependency's analyses in the next build, tracing the same files", async () => {
    const first = await trace();
    const second = await trace();
    expect(second).toEqual(first);
    expect(first).toContain("node_modules/dep/util.js");
    expect(made).toEqual([3, 1]); // the second build analyses the app's own file only
  });

  it("analyses a file again once its content changes", async () => {
    await trace();
    write("node_modules/dep/util.js", 'require("./extra");\n');
    expect(await trace()).toContain("node_modules/dep/extra.js");
    expect(made).toEqual([3, 3]); // the app, the changed file and the one it now requires
  });

  it("never lends an analysis to a reader that gives other content for the file", async () => {
    await trace();
    const transpiled = async (name: string) =>
      name.endsWith("util.js") ? 'require("./extra");\n' : fromDisk(name);
    expect(await trace(transpiled)).toContain("node_modules/dep/extra.js");
    expect(await trace()).not.toContain("node_modules/dep/extra.js"); // both kept, each for its own
    expect(made).toEqual([3, 3, 1]);
  });

  it("starts over when the dependencies change", async () => {
    const first = await trace();
    expect(await trace(fromDisk, undefined, "next 15.5.29, lockfile 2")).toEqual(first);
    expect(await trace()).toEqual(first); // the store holds the last dependencies' analyses only
    expect(made).toEqual([3, 3, 3]);
  });

  it("traces as usual when its store is unreadable", async () => {
    const first = await trace();
    const [store] = readdirSync(join(root, "cache"));
    const malformed = { key: "next 15.5.29, lockfile 1", analyses: [1] };
    writeFileSync(join(root, "cache", store), JSON.stringify(malformed));
    expect(await trace()).toEqual(first);
    expect(made).toEqual([3, 3]);
    expect(JSON.parse(readFileSync(join(root, "cache", store), "utf8")).analyses).toHaveProperty(
      [join(root, "node_modules/dep/util.js")],
    );
  });

  it("asks for each link once a trace, as nft does with its own readlink", async () => {
    const asked: string[] = [];
    await trace(fromDisk, async (name) => {
      asked.push(name);
      try {
        return readlinkSync(name);
      } catch {
        return null;
      }
    });
    expect(asked.length).toBeGreaterThan(0);
    expect(new Set(asked).size).toBe(asked.length);
  });
});
