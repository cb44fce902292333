"""What the multiprocess executor's forkserver imports once per run, so each step process forks
with it loaded instead of importing it again (a run of the estate starts more than a dozen step
processes).

Never imported by the code location itself (its load stays as fast as `import dagster`).
"""

from governance.warm import import_heavy

import_heavy()

import pipelines.definitions  # noqa: E402,F401  (the step processes load the definitions too)
