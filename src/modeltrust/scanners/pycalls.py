"""Which functions a Python file calls, resolved through its imports
(`import subprocess as sp; sp.run()` is `subprocess.run`). Read from the
syntax tree only; nothing is imported or run."""

from __future__ import annotations

import ast


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class CallCollector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.calls: list[tuple[str, int, int]] = []
        """(dotted target, line, column) of every call."""

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name

    def visit_Call(self, node: ast.Call) -> None:
        target = dotted(node.func)
        if target is not None:
            head, _, rest = target.partition(".")
            resolved = self.aliases.get(head)
            if resolved is not None:
                target = f"{resolved}.{rest}" if rest else resolved
            elif "." not in target:
                target = f"builtins.{target}"
            self.calls.append((target, node.lineno, node.col_offset))
        self.generic_visit(node)
