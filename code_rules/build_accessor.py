"""Write ``code_rules/parameters_typed.py``: one typed reader per parameter.

    python -m code_rules.build_accessor          # (re)write the file
    python -m code_rules.build_accessor --check  # exit 1 if it is out of date

Every ``code_rules/*/parameters.yaml`` (``ParameterSet.load()``) becomes a tree of
classes that mirrors the dotted names: ``typed(ctx.params).ccm.staff.threshold_minutes``
reads ``ccm.staff.threshold_minutes`` through ``PeriodParameters`` (so the read is
recorded in ``used``) and returns the Python type of its unit
(``billing_engine.params.units.UNIT_TYPES``). The dotted name is written out in the
generated file, so grep finds its reader, and each class also has the name as an
upper-case constant (``CcmStaff.THRESHOLD_MINUTES``) for a rule's ``parameters=``.

The build fails, naming the file and the parameter, on an unknown unit, on a value that
does not have its unit's type, or on a name that cannot be a Python attribute.
"""

from __future__ import annotations

import argparse
import keyword
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from billing_engine.errors import ConfigError
from billing_engine.params.parameter import Parameter
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.units import CHOICE, ValueType, value_type

OUTPUT = Path(__file__).with_name("parameters_typed.py")
ROOT_CLASS = "RulebookParams"
LINE = 100  # ruff's line-length (pyproject.toml)

# Protocols for sub-namespaces that share keys, so that one function serves them all:
# name -> (what it is, the namespaces). The protocol has the readers the namespaces
# have in common (same key, same type), in the order of the first namespace.
SHAPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "CcmTimedCode": (
        "A timed monthly CCM code: a base code and its add-on, by minutes in the month",
        ("ccm.staff", "ccm.practitioner", "ccm.complex"),
    ),
}


class AccessorError(ConfigError):
    """The parameter files cannot be turned into a typed accessor."""


@dataclass
class Leaf:
    key: str  # the last part of the name
    param: Parameter
    annotation: str
    body: str  # the expression returned
    alias: str = ""  # a Literal alias this leaf's annotation names ("" = none)
    alias_value: str = ""


@dataclass
class Node:
    path: tuple[str, ...]
    file: str = ""
    description: str = ""
    leaves: dict[str, Leaf] = field(default_factory=dict)
    children: dict[str, Node] = field(default_factory=dict)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for seg in self.path for part in seg.split("_"))

    def walk(self) -> list[Node]:
        out = [self]
        for child in self.children.values():
            out.extend(child.walk())
        return out


def _relative(file: str) -> str:
    """`file` relative to the directory holding code_rules/, if it is under it."""
    path = Path(file)
    try:
        return path.resolve().relative_to(Path(__file__).resolve().parents[1]).as_posix()
    except ValueError:
        return path.name


def _where(param: Parameter) -> str:
    return f"{param.file}: parameter {param.name}"


def _check_name(param: Parameter) -> None:
    for segment in param.name.split("."):
        if (
            not segment.isidentifier()
            or keyword.iskeyword(segment)
            or segment.startswith("_")
            or segment != segment.lower()
        ):
            raise AccessorError(
                f"{_where(param)}: {segment!r} cannot be an attribute; each part of a "
                "name must be a lower-case Python identifier (letters, digits, '_')"
            )


def _literal(values: Sequence[object]) -> str:
    return "Literal[" + ", ".join("None" if v is None else f'"{v}"' for v in values) + "]"


def _leaf(param: Parameter, class_name: str) -> Leaf:
    key = param.name.rsplit(".", 1)[-1]
    vtype: ValueType | None = value_type(param.unit)
    if vtype is None:
        raise AccessorError(
            f"{_where(param)}: unknown unit {param.unit!r}; the known units and their types "
            "are UNIT_TYPES in billing_engine/params/units.py (add the unit there)"
        )
    for dated in param.values:
        if not vtype.accepts(dated.value):
            raise AccessorError(
                f"{_where(param)}: the value from {dated.start} ({dated.value!r}) is not a "
                f"{param.unit!r} ({vtype.annotation})"
            )
    call = f'self._p.{vtype.getter}("{param.name}")'
    if vtype is not CHOICE:
        return Leaf(key, param, vtype.annotation, call)
    choices = list(param.choices)
    if not choices:
        raise AccessorError(f"{_where(param)}: unit 'choice' needs a list of choices")
    for dated in param.values:
        if dated.value not in choices:
            raise AccessorError(
                f"{_where(param)}: the value from {dated.start} ({dated.value!r}) is not one "
                f"of its choices {choices}"
            )
    if all(isinstance(c, bool) for c in choices):
        return Leaf(key, param, "bool", f'self._p.as_bool("{param.name}")')
    if not all(c is None or isinstance(c, str) for c in choices):
        raise AccessorError(
            f"{_where(param)}: choices {choices} mix kinds; use names (or null), or true/false"
        )
    alias = class_name + "".join(part.capitalize() for part in key.split("_"))
    return Leaf(key, param, alias, f"cast({alias}, {call})", alias, _literal(choices))


def _file_descriptions(params: Sequence[Parameter]) -> dict[str, str]:
    out: dict[str, str] = {}
    for file in sorted({p.file for p in params}):
        doc = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
        out[file] = str(doc.get("description", "")).strip()
    return out


def build_tree(
    params: ParameterSet, shapes: Mapping[str, tuple[str, tuple[str, ...]]] = SHAPES
) -> Node:
    """The namespaces as nested nodes; fails on a name that is both a value and a prefix."""
    all_params: list[Parameter] = list(params)
    descriptions = _file_descriptions(all_params)
    root = Node(())
    for param in all_params:
        _check_name(param)
        *prefix, key = param.name.split(".")
        node = root
        for depth, segment in enumerate(prefix):
            if segment in node.leaves:
                raise AccessorError(
                    f"{_where(param)}: {node.leaves[segment].param.name} is a value, so it "
                    "cannot also be the start of other names"
                )
            if segment not in node.children:
                node.children[segment] = Node((*node.path, segment), _relative(param.file))
                if depth == 0:
                    node.children[segment].description = descriptions.get(param.file, "")
            node = node.children[segment]
        if key in node.children:
            raise AccessorError(
                f"{_where(param)}: other names start with {param.name}., so it cannot be a value"
            )
        node.leaves[key] = _leaf(param, node.class_name)
    seen: dict[str, str] = {ROOT_CLASS: "the root", **{s: "a protocol" for s in shapes}}
    for node in root.walk()[1:]:
        if node.class_name in seen:
            raise AccessorError(
                f"{node.file}: namespace {node.dotted} and {seen[node.class_name]} both "
                f"become class {node.class_name}; rename one"
            )
        seen[node.class_name] = node.dotted
        for leaf in node.leaves.values():
            if leaf.alias and leaf.alias in seen:
                raise AccessorError(f"{_where(leaf.param)}: type name {leaf.alias} is taken")
            seen[leaf.alias or "-"] = leaf.param.name
    return root


# -- rendering ---------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _docstring(paragraphs: Sequence[str], indent: int) -> list[str]:
    pad = " " * indent
    width = LINE - indent
    texts = [_escape(" ".join(p.split())) for p in paragraphs if p.strip()]
    # ruff format puts a space between the quotes and a docstring that starts with one
    opening = '""" ' if texts[0].startswith('"') else '"""'
    if len(texts) == 1 and len(opening) + len(texts[0]) + 3 <= width:
        closing = ' """' if texts[0].endswith('"') else '"""'
        return [f"{pad}{opening}{texts[0]}{closing}"]
    # one paragraph: its last line must leave room for the closing quotes, or ruff joins it
    first_width = width - 3 if len(texts) == 1 else width
    lines = textwrap.wrap(
        texts[0], width=first_width, initial_indent=opening, break_on_hyphens=False
    )
    for text in texts[1:]:
        lines += ["", *textwrap.wrap(text, width=width, break_on_hyphens=False)]
    return [*(f"{pad}{line}" if line else "" for line in lines), f'{pad}"""']


def _return(expr: str, indent: int) -> list[str]:
    """``return expr``, wrapped as ruff format would wrap a call that is too long."""
    pad = " " * indent
    one = f"{pad}return {expr}"
    if len(one) <= LINE or "(" not in expr:
        return [one]
    head, _, rest = expr.partition("(")
    args = rest[:-1]
    if len(pad) + 4 + len(args) <= LINE:
        return [f"{pad}return {head}(", f"{pad}    {args}", f"{pad})"]
    parts = [a.strip() for a in args.split(", ", 1)]
    return [f"{pad}return {head}(", *[f"{pad}    {a}," for a in parts], f"{pad})"]


def _alias_lines(leaf: Leaf) -> list[str]:
    line = f"{leaf.alias} = {leaf.alias_value}"
    if len(line) <= LINE:
        return [line]
    items = leaf.alias_value.removeprefix("Literal[").removesuffix("]").split(", ")
    return [f"{leaf.alias} = Literal[", *[f"    {item}," for item in items], "]"]


def _leaf_doc(leaf: Leaf) -> list[str]:
    p = leaf.param
    facts = f"Unit: {p.unit}."
    if p.rules:
        facts += f" Rules: {', '.join(p.rules)}."
    if p.setting:
        facts += " A setting (a settings file may override it)."
    return [p.description, facts]


def _node_class(node: Node) -> list[str]:
    where = f" ({node.file})" if node.file else ""
    title = f"``{node.dotted}.*``{where}."
    if node.description:
        title = f"{node.description.rstrip('.')}: {title}"
    lines = [f"class {node.class_name}:"]
    lines += _docstring([title], 4)
    if node.leaves:
        lines.append("")
        lines += [
            f'    {k.upper()}: Final = "{leaf.param.name}"' for k, leaf in node.leaves.items()
        ]
    lines += ["", "    def __init__(self, p: PeriodParameters) -> None:", "        self._p = p"]
    lines += [
        f"        self.{key}: Final = {child.class_name}(p)" for key, child in node.children.items()
    ]
    for key, leaf in node.leaves.items():
        lines += ["", "    @property", f"    def {key}(self) -> {leaf.annotation}:"]
        lines += _docstring(_leaf_doc(leaf), 8)
        lines += _return(leaf.body, 8)
    return lines


def _protocols(root: Node, shapes: Mapping[str, tuple[str, tuple[str, ...]]]) -> list[list[str]]:
    nodes = {node.dotted: node for node in root.walk()[1:]}
    out: list[list[str]] = []
    for name, (what, namespaces) in shapes.items():
        missing = [ns for ns in namespaces if ns not in nodes]
        if missing:
            raise AccessorError(f"protocol {name}: no namespace {', '.join(missing)}")
        first, *others = (nodes[ns] for ns in namespaces)
        common = [
            leaf
            for key, leaf in first.leaves.items()
            if all(key in o.leaves and o.leaves[key].annotation == leaf.annotation for o in others)
        ]
        if not common:
            raise AccessorError(f"protocol {name}: {', '.join(namespaces)} share no parameter")
        listed = ", ".join(f"``{ns}``" for ns in namespaces)
        lines = [f"class {name}(Protocol):"]
        lines += _docstring([f"{what}: {listed}."], 4)
        for leaf in common:
            lines += [
                "",
                "    @property",
                f"    def {leaf.key.upper()}(self) -> str: ...  # noqa: N802",
                "",
                "    @property",
                f"    def {leaf.key}(self) -> {leaf.annotation}: ...",
            ]
        out.append(lines)
    return out


def _root_class(root: Node) -> list[str]:
    lines = [f"class {ROOT_CLASS}:"]
    lines += _docstring(
        [
            "Every parameter of code_rules/*/parameters.yaml, typed, for one period.",
            "Build it with ``typed(ctx.params)``; each read goes through the "
            "PeriodParameters (checked verified for the period, recorded in ``used``).",
        ],
        4,
    )
    lines += ["", "    def __init__(self, p: PeriodParameters) -> None:", "        self._p = p"]
    lines += [f"        self.{key}: Final = {n.class_name}(p)" for key, n in root.children.items()]
    return lines


def render(params: ParameterSet, shapes: Mapping[str, tuple[str, tuple[str, ...]]] = SHAPES) -> str:
    """The text of parameters_typed.py for `params` (with the protocols of `shapes`)."""
    root = build_tree(params, shapes)
    nodes = root.walk()[1:]
    leaves = [leaf for node in nodes for leaf in node.leaves.values()]
    annotations = " ".join(leaf.annotation for leaf in leaves)
    typing_names = ["Final"]
    if "Any" in annotations:
        typing_names.append("Any")
    aliases = [leaf for leaf in leaves if leaf.alias]
    if aliases:
        typing_names += ["Literal", "cast"]
    protocols = _protocols(root, shapes)
    if protocols:
        typing_names.append("Protocol")
    imports = ["from __future__ import annotations", ""]
    if "Mapping[" in annotations:
        imports.append("from collections.abc import Mapping")
    if "Decimal" in annotations:
        imports.append("from decimal import Decimal")
    # isort's order by type (ruff's default): classes, then functions
    typing_names.sort(key=lambda name: (name[0].islower(), name))
    imports.append(f"from typing import {', '.join(typing_names)}")
    imports += ["", "from billing_engine.params.period import PeriodParameters"]

    header = [
        '"""Typed readers of every parameter in code_rules/*/parameters.yaml (generated).',
        "",
        "Generated by ``python -m code_rules.build_accessor``: do not edit; change a",
        "parameters.yaml and run it again. Use::",
        "",
        "    rp = typed(ctx.params)",
        "    rp.ccm.staff.threshold_minutes  # int, read (and recorded) for the period",
        '    CcmStaff.THRESHOLD_MINUTES  # "ccm.staff.threshold_minutes", for parameters=',
        '"""',
        "",
    ]
    blocks: list[list[str]] = []
    if aliases:
        blocks.append(
            ["# the values of each choice setting"]
            + [line for leaf in aliases for line in _alias_lines(leaf)]
        )
    blocks += protocols
    blocks.append(_root_class(root))
    blocks.append(
        [
            f"def typed(p: PeriodParameters) -> {ROOT_CLASS}:",
            '    """The typed view of `p` (reads go through `p`)."""',
            f"    return {ROOT_CLASS}(p)",
        ]
    )
    blocks += [_node_class(node) for node in nodes]
    body = "\n\n\n".join("\n".join(block) for block in blocks)
    # isort: one blank line after the imports, two before a class or def
    gap = "\n\n" if aliases else "\n\n\n"
    return "\n".join([*header, *imports]) + gap + body + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m code_rules.build_accessor")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    try:
        text = render(ParameterSet.load([OUTPUT.parent]))
    except ConfigError as exc:
        print(f"build_accessor: {exc}", file=sys.stderr)
        return 2
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"{OUTPUT} is out of date: run python -m code_rules.build_accessor")
            return 1
        return 0
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
