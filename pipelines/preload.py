"""The first module the multiprocess executor's forkserver imports in a run (pipelines/executor.py
names the heavy libraries the run's steps use after it), so each step process forks with the
definitions loaded instead of loading them again.

Never imported by the code location itself (its load stays as fast as `import dagster`).
"""

from governance.warm import quiet_telemetry

quiet_telemetry()

import pipelines.definitions  # noqa: E402,F401  (the step processes load the definitions too)
