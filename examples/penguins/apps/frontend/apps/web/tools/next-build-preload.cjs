// Loaded by the build script through NODE_OPTIONS (so in Next's build workers as well).
require("./trace-cache.cjs").install();
