"""CloudFormation template helpers shared by the emulator's bootstrap and the template's tests."""
from __future__ import annotations

import re


def references(node) -> set[str]:
    """Logical ids and parameters named by Ref, Fn::GetAtt and Fn::Sub in a fragment (a
    Fn::Sub's own variables excluded)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".", 1)[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                names = {n.split(".", 1)[0] for n in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list):
                    names -= set(value[1])
                    found |= references(value[1])
                found |= names
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found
