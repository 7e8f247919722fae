"""``python -m orsync.posters``: the CP-SAT child process (``remote``); not a command."""

from orsync.posters.remote import child_main

child_main()
