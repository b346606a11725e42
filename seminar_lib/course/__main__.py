"""``python -m seminar_lib.course run | write-back …``: :func:`seminar_lib.course.cli.main`."""

import sys

from seminar_lib.course.cli import main

sys.exit(main())
