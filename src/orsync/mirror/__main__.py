"""``python -m orsync.mirror``: a first pull's row builder (``mirror/child.py``)."""

import sys

from orsync.mirror.child import child_main

sys.exit(child_main())
