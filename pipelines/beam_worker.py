"""The worker process of `--direct_running_mode multi_processing`: Beam's SDK harness, quiet until it is set up.

    python -m pipelines.beam_worker      (started by pipelines/runner.py's FnApiRunner, never by hand)

Beam's own worker (`python -m apache_beam.runners.worker.sdk_worker_main`) warns on the root logger while Beam
is imported ("apitools not found"), which gives the root logger a stderr handler; the harness then logs
"Logging handler created" through it before reading the pipeline's worker log level. Each worker process printed
both lines to the terminal. Here the root logger has a handler that drops records before Beam is imported, and the
harness's own handler (added while it starts) sends every later record to the runner, which logs it at
`--default_sdk_harness_log_level` (`ambert -v` shows them).
"""

from __future__ import annotations

import logging
import sys

logging.getLogger().addHandler(logging.NullHandler())  # before `import apache_beam`: no stderr handler in workers

from apache_beam.runners.worker import sdk_worker_main  # noqa: E402 - after the handler, on purpose

if __name__ == "__main__":
    sdk_worker_main.main(sys.argv)
