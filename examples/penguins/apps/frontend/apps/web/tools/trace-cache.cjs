// For `output: "standalone"`, `next build` traces its own server (about 1,900 files) on every
// build, and that trace was the longest part of a rebuild after a source-only change, for two
// reasons in how Next calls @vercel/nft:
// - every file's analysis (parse it, find what it requires) is redone, though a file under
//   node_modules only changes with the lockfile. Here those analyses persist in .next/cache/trace/
//   (a cache mount in the image build) for as long as Next's version and the workspace's
//   pnpm-lock.yaml stay the same, each keyed by the file's path and a digest of the content the
//   trace read for it: an analysis is reused only for the very input it was made from, whoever
//   asks (Next's webpack plugin reads transpiled sources, its server trace reads the files);
// - Next hands nft its own `readlink`, which bypasses nft's cache of it, so every directory of
//   every path is asked again (one exception per ordinary file). Here each is asked once a trace,
//   as nft does by itself.
// Failing to read or write the cache costs time only: the trace then runs as Next wrote it.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");

const MODULES = `${path.sep}node_modules${path.sep}`;
const READS_AT_ONCE = 64;

const sha256 = (content) => crypto.createHash("sha256").update(content).digest("hex");

/** The file a trace with these options keeps its analyses in (functions do not change them). */
function cacheFile(directory, options) {
  const settings = Object.keys(options)
    .filter((key) => typeof options[key] !== "function")
    .sort()
    .map((key) => [key, options[key]]);
  return path.join(directory, `${sha256(JSON.stringify(settings)).slice(0, 16)}.json`);
}

const objects = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** The stored analyses, {name: {digest: analysis}}, if made under `key`; else none. */
function readStore(file, key) {
  try {
    const { key: madeUnder, analyses } = JSON.parse(fs.readFileSync(file, "utf8"));
    const wellFormed = objects(analyses) && Object.values(analyses).every(objects);
    return madeUnder === key && wellFormed ? analyses : {};
  } catch {
    return {};
  }
}

/** The digest of what `readFile` gives for each name (null when it fails or gives nothing). */
async function digests(names, readFile) {
  const found = new Map();
  for (let start = 0; start < names.length; start += READS_AT_ONCE) {
    await Promise.all(
      names.slice(start, start + READS_AT_ONCE).map(async (name) => {
        try {
          const content = await readFile(name);
          found.set(name, content == null ? null : sha256(content));
        } catch {
          found.set(name, null);
        }
      }),
    );
  }
  return found;
}

const complete = (entry) =>
  Boolean(entry) &&
  ["deps", "imports", "assets"].every((key) => Array.isArray(entry[key])) &&
  typeof entry.isESM === "boolean";

/** The stored analyses made from the content `readFile` now gives, by name, with that digest. */
async function reusable(store, readFile) {
  const current = await digests(Object.keys(store), readFile);
  const analyses = new Map();
  for (const [name, sum] of current) {
    const entry = sum && store[name] && store[name][sum];
    if (complete(entry)) {
      const analysis = {
        deps: new Set(entry.deps),
        imports: new Set(entry.imports),
        assets: new Set(entry.assets),
        isESM: entry.isESM,
      };
      analyses.set(name, { sum, analysis });
    }
  }
  return analyses;
}

/** Adds this trace's analyses of node_modules files (the app's own change build to build) to the
 * store, dropping files gone from disk; writes it whole, then renames, so no reader sees half. */
function save(file, key, store, analysisCache, read) {
  let added = 0;
  for (const [name, analysis] of analysisCache) {
    const sum = read.get(name);
    if (!name.includes(MODULES) || !sum) continue;
    const { deps, imports, assets, isESM } = analysis;
    const stored = { deps: [...deps], imports: [...imports], assets: [...assets], isESM };
    store[name] = { ...store[name], [sum]: stored };
    added += 1;
  }
  for (const name of Object.keys(store)) if (!fs.existsSync(name)) delete store[name];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}`;
  fs.writeFileSync(partial, JSON.stringify({ key, analyses: store }));
  fs.renameSync(partial, file);
  return added;
}

/** `readFile` that notes the digest of what it gave for each name. */
function noting(readFile, read) {
  return async (name) => {
    const content = await readFile(name);
    if (content != null) read.set(name, sha256(content));
    return content;
  };
}

function once(readlink) {
  const answers = new Map();
  return (link) => {
    if (!answers.has(link)) answers.set(link, readlink(link));
    return answers.get(link);
  };
}

/** nodeFileTrace reusing analyses across builds, asking each readlink once. Traces whose caller
 * keeps its own cache, or reads files nft's way (their content unseen here), pass through. */
function cachedTrace(trace, directory, key, log = console.log) {
  return async function nodeFileTrace(files, options = {}) {
    if (options.cache || !options.readFile) return trace(files, options);
    const file = cacheFile(directory, options);
    const store = readStore(file, key);
    const reused = await reusable(store, options.readFile).catch(() => new Map());
    const read = new Map([...reused].map(([name, { sum }]) => [name, sum]));
    const analysisCache = new Map([...reused].map(([name, { analysis }]) => [name, analysis]));
    const result = await trace(files, {
      ...options,
      readFile: noting(options.readFile, read),
      ...(options.readlink ? { readlink: once(options.readlink) } : {}),
      cache: { analysisCache },
    });
    try {
      const kept = save(file, key, store, analysisCache, read);
      if (kept > 0) {
        const made = analysisCache.size - reused.size;
        log(`   Trace cache: ${reused.size} file analyses reused, ${made} made`);
      }
    } catch (error) {
      log(`   Trace cache: not saved (${error.message})`);
    }
    return result;
  };
}

/** What the stored analyses hold for: Next's version and the nearest pnpm-lock.yaml's digest. */
function dependencies(root) {
  const { version } = require(require.resolve("next/package.json", { paths: [root] }));
  for (let directory = root; ; directory = path.dirname(directory)) {
    const lockfile = path.join(directory, "pnpm-lock.yaml");
    if (fs.existsSync(lockfile)) {
      return `next ${version}, lockfile ${sha256(fs.readFileSync(lockfile))}`;
    }
    if (path.dirname(directory) === directory) return `next ${version}, no lockfile`;
  }
}

const NFT = "next/dist/compiled/@vercel/nft";
const wrapped = new WeakSet();

/** Wraps the nft that Next requires as it is loaded, so that the build's other processes (most of
 * them never trace) pay nothing; the lockfile is read only where a trace runs. */
function install(root) {
  const load = Module._load;
  Module._load = function (request, ...rest) {
    const exports = load.call(this, request, ...rest);
    if (request === NFT && !wrapped.has(exports)) {
      wrapped.add(exports);
      try {
        const trace = exports.nodeFileTrace;
        const directory = path.join(root, ".next", "cache", "trace");
        const value = cachedTrace(trace, directory, dependencies(root));
        // its exports are configurable getters: replaced in place, for every module holding them
        const property = { configurable: true, enumerable: true, value };
        Object.defineProperty(exports, "nodeFileTrace", property);
      } catch {
        // Next not found from the app's directory: the trace runs as Next wrote it
      }
    }
    return exports;
  };
}

module.exports = { cachedTrace, install };
