// Builds a JavaScript policy into a component with componentize-js. Run by
// `provkey build`: node componentize.mjs COMPONENTIZE_JS_ENTRY SOURCE WIT_DIR OUTPUT
import { writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [entry, sourcePath, witPath, output] = process.argv.slice(2);
const { componentize } = await import(pathToFileURL(entry).href);
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName: "policy",
  // Weval AOT stays off; stdio stays on so that a thrown error is reported.
  enableAot: false,
  disableFeatures: ["random", "clocks", "http", "fetch-event"],
});
await writeFile(output, component);
