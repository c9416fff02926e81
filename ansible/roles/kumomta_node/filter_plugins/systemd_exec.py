"""systemd_arg: one argument of a systemd Exec*= line (systemd.service(5), "Command lines").

Not the shell's quoting: systemd expands %-specifiers and $VARIABLES inside quotes too, and its
quoting is its own. A word of plain characters stays as it is; anything else is double-quoted with
backslash, double quote, % and $ escaped.
"""

import re

PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")


def systemd_arg(value):
    s = str(value)
    if PLAIN.match(s):
        return s
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return '"' + out + '"'


class FilterModule:
    def filters(self):
        return {"systemd_arg": systemd_arg}
