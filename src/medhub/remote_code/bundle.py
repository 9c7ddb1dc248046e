"""Collect the medhub source a model needs into flat, self-contained files for a Hub repo's remote code.

transformers loads remote code from files at the repo's root, importing each other relatively
(`from .name import X`), and refuses a file importing a package that is not installed. So, starting from the
modules of a model class, its config class and its processor class, every medhub module they import (at any
depth) is copied into one file named after its path (`medhub.layers.unet_blocks` -> `medhub_layers_unet_blocks.py`,
`medhub.models.unet.modeling_unet` -> `modeling_unet.py`) with its medhub imports rewritten to those names.
Two kinds of import are changed on the way:
- modules that serve medhub itself rather than the network (`STAND_INS`: loading from the Hub, reading volumes)
  are replaced by small stand-ins that say medhub is needed for that (the `medhub.io` stand-in keeps medhub's
  readers of DICOM, PNG and JPEG images);
- packages outside what a transformers user has (`ALLOWED`) are imported in a `try` block that leaves a
  `Missing` placeholder, so the files load everywhere and name the package if that code path is reached.
The text is otherwise medhub's own, unchanged, so the files read like the library.
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

# Packages a user of plain transformers has (torch, transformers and their dependencies).
ALLOWED = {"torch", "transformers", "safetensors", "huggingface_hub", "numpy", "PIL", "tqdm"}

# medhub modules replaced in the bundle by a stand-in (module of medhub.remote_code): the stand-in keeps the names
# the network code uses and leaves out what only medhub itself does.
STAND_INS = {
    "medhub.modeling_utils": "medhub.remote_code.modeling_stand_in",
    "medhub.io": "medhub.remote_code.io_stand_in",
    "medhub.io.volume": "medhub.remote_code.io_stand_in",
}
OPTIONAL_HELPER = "medhub.remote_code.optional"


@dataclass(frozen=True)
class BundledFile:
    name: str  # file name in the repo, e.g. "modeling_unet.py"
    source: str  # medhub module it comes from
    text: str


def flat_name(module: str) -> str:
    """The repo file (without .py) that holds `module`."""
    parts = module.split(".")
    if parts[:2] == ["medhub", "models"] and len(parts) == 4:
        return parts[3]
    if parts[:2] == ["medhub", "remote_code"]:
        return "medhub_" + parts[2]
    return "_".join(parts)


def bundle(roots: list[str], version: str) -> list[BundledFile]:
    """The files for the modules `roots` and every medhub module they import, in a stable order."""
    files: dict[str, BundledFile] = {}
    todo = list(roots)
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        module = STAND_INS.get(module, module)
        if module in seen:
            continue
        seen.add(module)
        text, needed = _rewrite(module, version)
        files[flat_name(module)] = BundledFile(flat_name(module) + ".py", module, text)
        todo.extend(needed)
    return [files[k] for k in sorted(files)]


def _module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the source of {module}")
    return Path(spec.origin)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module, not a submodule
        return False


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _rewrite(module: str, version: str) -> tuple[str, list[str]]:
    """(the file text for `module`, the medhub modules it imports)."""
    path = _module_file(module)
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    needed: list[str] = []
    edits: list[tuple[int, int, str]] = []  # (first line, last line, replacement), 1-based inclusive
    for node in _imports(tree):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(module, path.name == "__init__.py", node)
            if node.module == "__future__":
                continue
            indent = lines[node.lineno - 1][: node.col_offset]
            if target == "medhub" or target.startswith("medhub."):
                if all(_is_module(f"{target}.{a.name}") for a in node.names):  # `from . import limits`
                    modules = [(STAND_INS.get(f"{target}.{a.name}", f"{target}.{a.name}"), a.asname or a.name)
                               for a in node.names]
                    needed.extend(module for module, _ in modules)
                    edits.append((node.lineno, node.end_lineno, "\n".join(
                        _module_import(indent, flat_name(module), name) for module, name in modules)))
                    continue
                target = STAND_INS.get(target, target)
                needed.append(target)
                names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
                edits.append((node.lineno, node.end_lineno, f"{indent}from .{flat_name(target)} import {names}"))
            elif target.split(".")[0] not in ALLOWED and target.split(".")[0] not in sys.stdlib_module_names:
                edits.append((node.lineno, node.end_lineno,
                              _guarded(indent, ast.get_source_segment(source, node), target, node.names)))
                needed.append(OPTIONAL_HELPER)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "medhub":
                    raise ValueError(f"{path}:{node.lineno}: `import {alias.name}`; bundled code uses `from` imports")
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    indent = lines[node.lineno - 1][: node.col_offset]
                    edits.append((node.lineno, node.end_lineno,
                                  _guarded(indent, ast.get_source_segment(source, node), alias.name, node.names)))
                    needed.append(OPTIONAL_HELPER)
    for first, last, text in sorted(edits, reverse=True):
        lines[first - 1:last] = text.splitlines()
    relative = path.relative_to(_module_file("medhub").parent.parent)
    header = (f"# Generated by medhub {version} from {relative.as_posix()}; loaded by transformers with "
              "trust_remote_code=True.\n"
              "# medhub itself never runs this file: it loads the weights with its own code.\n")
    return header + "\n".join(lines) + "\n", needed


def _module_import(indent: str, flat: str, name: str) -> str:
    """`from . import <flat> as <name>`, preceded by a `from .<flat> import` line: transformers copies a repo's
    files by those lines only (`dynamic_module_utils.get_relative_imports`)."""
    return (f"{indent}from .{flat} import __name__ as _{flat}  # makes transformers copy {flat}.py\n"
            f"{indent}from . import {flat} as {name}")


def _imports(node: ast.AST):
    """Import statements under `node`, except those already inside a `try` (optional imports)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif not isinstance(child, ast.Try):
            yield from _imports(child)


def _guarded(indent: str, statement: str, package: str, names: list[ast.alias]) -> str:
    bound = [a.asname or a.name.split(".")[0] for a in names]
    top = package.split(".")[0]
    body = [f"{indent}try:  # {top} comes with medhub; without it this code path names what is missing",
            f"{indent}    {statement}",
            f"{indent}except ImportError:",
            f"{indent}    from .{flat_name(OPTIONAL_HELPER)} import Missing",
            *(f"{indent}    {name} = Missing({top!r}, {name!r})" for name in bound)]
    return "\n".join(body)
