"""to_lua: a Lua literal for node_settings.lua (strings, numbers, booleans, lists, maps)."""

import re

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LUA_KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}


def _string(value):
    out = []
    for ch in value:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif code < 32 or code == 127:
            out.append("\\%03d" % code)
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def to_lua(value, indent=0):
    pad = "  " * (indent + 1)
    end = "  " * indent
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("to_lua: not a finite number: %r" % value)
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for key in sorted(value, key=str):
            k = str(key)
            name = k if IDENT.match(k) and k not in LUA_KEYWORDS else "[" + _string(k) + "]"
            items.append("%s%s = %s," % (pad, name, to_lua(value[key], indent + 1)))
        return "{\n" + "\n".join(items) + "\n" + end + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "{}"
        return "{ " + ", ".join(to_lua(v, indent + 1) for v in value) + " }"
    # Jinja's lazy strings and the like
    return _string(str(value))


class FilterModule:
    def filters(self):
        return {"to_lua": to_lua}
