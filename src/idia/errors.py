"""The base of every error a user can fix.

A library function raises a subclass of :class:`IdiaError` when the input, a setting or a
file is wrong in a way its user can correct, with a message that says what to do; the
command line prints that message as one ``error:`` line. Anything else that escapes idia is
a bug in idia.
"""

from __future__ import annotations


class IdiaError(Exception):
    """Something the user can fix (a bad input, setting or file); the message says what."""
