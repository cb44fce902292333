// Loaded by the build script through NODE_OPTIONS (so in Next's build workers as well): the app's
// directory is this file's parent, whatever a process's working directory.
require("./trace-cache.cjs").install(require("node:path").join(__dirname, ".."));
