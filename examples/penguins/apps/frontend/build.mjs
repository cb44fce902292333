// Minifies the page's script into dist/; the page itself is copied as is.
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { minify } from "terser";

await mkdir("dist", { recursive: true });
const source = await readFile("src/app.js", "utf8");
const { code } = await minify(source, { module: true });
await writeFile("dist/app.js", code);
await copyFile("src/index.html", "dist/index.html");
console.log(`dist/app.js: ${source.length} -> ${code.length} bytes`);
