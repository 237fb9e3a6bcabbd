from __future__ import annotations

import pytest

from fgo_engine.errors import MalformedOutputError
from fgo_engine.tools.toolbox import (
    REPLACE,
    apply_edits,
    canonical_source,
    check_merged_toolbox,
    merge_toolboxes,
    parse_edits,
    parse_toolbox,
    parse_toolbox_source,
    render_toolbox,
    tool_schemas,
    toolbox_text_for_similarity,
)

SOURCE = '''"""Invoice tools."""
import re
from typing import Optional

RATE = 0.2


# Find the transport reference in an invoice.
def find_reference(path: str, lang: Optional[str] = None, *, strict: bool = False) -> str:
    """Find the transport reference number.

    Reads the UBL file and looks in the usual places.

    Args:
        path: Path of the XML file,
            relative to the task files.
        lang (str): Language code of the invoice.
        strict: Fail instead of guessing.

    Returns:
        The reference, or "".
    """
    text = open(path, encoding="utf-8").read()
    return _first(re.findall(r"<cbc:ID>(.*?)</cbc:ID>", text))
def _first(items):
    return items[0] if items else ""
import json


def add_tax(amount: float, rate=RATE, *extra, **opts) -> float:
    return amount * (1 + rate)
'''


def test_parse_extracts_tools_params_and_keeps_helpers():
    tools = parse_toolbox(SOURCE)
    assert [t.name for t in tools] == ["find_reference", "add_tax"]  # _first is not a tool
    ref = tools[0]
    assert ref.signature == (
        "find_reference(path: str, lang: Optional[str]=None, *, strict: bool=False) -> str")
    assert ref.params == [("path", "str", None), ("lang", "Optional[str]", "None"),
                          ("strict", "bool", "False")]
    assert ref.docstring.startswith("Find the transport reference number.")
    assert ref.source.startswith("# Find the transport reference")  # comment travels along
    assert tools[1].params == [("amount", "float", None), ("rate", "", "RATE"),
                               ("*extra", "", None), ("**opts", "", None)]
    box = parse_toolbox_source(SOURCE)
    assert box.imports == ["import re", "from typing import Optional", "import json"]
    assert [getattr(i, "name", i) for i in box.items] == [
        "RATE = 0.2", "find_reference", "_first", "add_tax"]
    assert box.header == '"""Invoice tools."""'


def test_render_round_trip_is_stable():
    box = parse_toolbox_source(SOURCE)
    once = box.render()
    assert once.startswith('"""Invoice tools."""\n\nimport re\nfrom typing import Optional\n'
                           'import json\n\n\nRATE = 0.2\n\n\n# Find')
    assert "\n\n\ndef _first(items):" in once and "\n\n\ndef add_tax(" in once
    assert canonical_source(once) == once
    assert parse_toolbox(once) == parse_toolbox(SOURCE)
    # the public-tools-only rendering is also a fixed point
    tools_only = render_toolbox(parse_toolbox(SOURCE), box.imports)
    assert render_toolbox(parse_toolbox(tools_only), box.imports) == tools_only
    compile(once, "<t>", "exec")


def test_empty_toolbox_and_duplicate_definition():
    assert parse_toolbox("") == [] and canonical_source("") == ""
    src = "def f():\n    return 1\n\n\ndef f():\n    return 2\n"
    assert [t.source for t in parse_toolbox(src)] == ["def f():\n    return 2"]  # later wins


def test_syntax_error_names_the_line():
    with pytest.raises(MalformedOutputError, match=r"line 3"):
        parse_toolbox("def ok():\n    return 1\ndef broken(:\n    pass\n")


def test_tool_schemas_types_defaults_and_args_section():
    schemas = tool_schemas(parse_toolbox(SOURCE))
    assert [s["function"]["name"] for s in schemas] == ["find_reference", "add_tax"]
    fn = schemas[0]["function"]
    assert schemas[0]["type"] == "function"
    assert fn["description"] == "Find the transport reference number."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["path"]
    assert params["properties"]["path"] == {
        "type": "string", "description": "Path of the XML file, relative to the task files."}
    assert params["properties"]["lang"]["type"] == "string"
    assert params["properties"]["lang"]["description"].startswith("Language code of the invoice.")
    assert params["properties"]["strict"]["type"] == "boolean"
    tax = schemas[1]["function"]
    assert tax["parameters"]["required"] == ["amount"]
    assert set(tax["parameters"]["properties"]) == {"amount", "rate"}  # no *extra/**opts
    assert tax["parameters"]["properties"]["amount"]["type"] == "number"
    assert tax["description"] == "add tax"  # no docstring: the name


@pytest.mark.parametrize("ann, schema", [
    ("int", {"type": "integer"}), ("list[int]", {"type": "array", "items": {"type": "integer"}}),
    ("dict", {"type": "object"}), ("dict[str, int]", {"type": "object"}),
    ("int | None", {"type": "integer"}),
    ("Literal['a', 'b']", {"type": "string", "enum": ["a", "b"]}),
    ("'float'", {"type": "number"}), ("Any", {}), ("SomeClass", {"type": "string"}),
])
def test_annotation_mapping(ann, schema):
    src = f"def f(x: {ann}):\n    '''F.\n\n    Args:\n        x: the x\n    '''\n"
    prop = tool_schemas(parse_toolbox(src))[0]["function"]["parameters"]["properties"]["x"]
    prop.pop("description")
    assert prop == schema


def test_apply_edits_add_revise_remove_with_notes():
    edits = [
        {"op": "revise", "name": "add_tax", "source": "def add_tax(amount: float) -> float:\n"
                                                      "    return round(amount * 1.2, 2)\n"},
        {"op": "add", "name": "count_lines",
         "source": "import os\n\ndef count_lines(path: str) -> int:\n"
                   "    return len(open(path).readlines())\n"},
        {"op": "remove", "name": "find_reference"},
        {"op": "remove", "name": "missing_tool"},
        {"op": "add", "name": "count_lines", "source": "def count_lines(path):\n    return 0\n"},
        {"op": "revise", "name": "brand_new", "source": "def brand_new():\n    return 1\n"},
    ]
    new, notes = apply_edits(SOURCE, edits)
    assert notes == ["revised add_tax", "added count_lines", "removed find_reference",
                     "remove missing_tool: no such tool (ignored)",
                     "add count_lines: already exists, revised instead",
                     "revise brand_new: no such tool, added instead"]
    names = [t.name for t in parse_toolbox(new)]
    assert names == ["add_tax", "count_lines", "brand_new"]
    assert "round(amount * 1.2, 2)" in new and "return 0" in new
    assert "def _first(items)" in new and "RATE = 0.2" in new  # helpers and statements kept
    assert "import os" in new
    assert canonical_source(new) == new


@pytest.mark.parametrize("edit, message", [
    ({"op": "revise", "name": "add_tax", "source": "def add_tax(:\n  pass"},
     r"revise 'add_tax'.*line 1"),
    ({"op": "add", "name": "x", "source": "def y():\n    pass\n"},
     r"exactly one function named 'x' \(found: y\)"),
    ({"op": "add", "name": "x", "source": "def x():\n    pass\ndef z():\n    pass\n"},
     r"found: x, z"),
    ({"op": "add", "name": "x", "source": "X = 1\ndef x():\n    pass\n"},
     r"unexpected statement at line 1"),
    ({"op": "rename", "name": "x"}, r"unknown op 'rename'"),
    ({"op": "add", "name": "not a name", "source": "def x(): pass"}, r"not a valid function name"),
])
def test_apply_edits_rejects_invalid_edits(edit, message):
    with pytest.raises(MalformedOutputError, match=message):
        apply_edits(SOURCE, [edit])


def test_parse_edits_edit_blocks_in_order():
    reply = """I will fix two tools.
<revise name="add_tax">
```python
def add_tax(amount: float) -> float:
    return amount * 1.2
```
</revise>
<remove name="find_reference"/>
<add name='count'>
    def count(xs: list) -> int:
        return len(xs)
</add>
<remove name="_first"></remove>
"""
    edits = parse_edits(reply)
    assert [(e["op"], e["name"]) for e in edits] == [
        ("revise", "add_tax"), ("remove", "find_reference"), ("add", "count"), ("remove", "_first")]
    assert edits[0]["source"] == "def add_tax(amount: float) -> float:\n    return amount * 1.2\n"
    assert edits[2]["source"].startswith("def count(xs: list) -> int:\n")  # dedented
    new, _ = apply_edits(SOURCE, edits)
    assert [t.name for t in parse_toolbox(new)] == ["add_tax", "count"]
    assert parse_edits("Nothing to change.") == []


def test_parse_edits_full_toolbox_becomes_replace():
    reply = ("old:\n<toolbox>def a():\n    pass\n</toolbox>\nnew:\n<toolbox>\n```python\n"
             "def add_tax(amount):\n    return amount\n\n\ndef fresh():\n    return 2\n"
             "```\n</toolbox>"
             '\n<remove name="x"/>')
    edits = parse_edits(reply)
    assert edits == [{"op": REPLACE, "name": "*", "source":
                      "def add_tax(amount):\n    return amount\n\n\ndef fresh():\n    return 2\n"}]
    new, notes = apply_edits(SOURCE, edits)
    assert [t.name for t in parse_toolbox(new)] == ["add_tax", "fresh"]
    assert notes == ["revised add_tax", "added fresh", "removed find_reference", "removed _first"]
    with pytest.raises(MalformedOutputError, match="line 1"):
        apply_edits(SOURCE, parse_edits("<toolbox>def (</toolbox>"))
    with pytest.raises(MalformedOutputError, match="no public tool"):
        apply_edits(SOURCE, parse_edits("<toolbox></toolbox>"))


A = '''import re


def parse_date(s: str) -> str:
    """Best version."""
    return re.sub(r"/", "-", s)


def total(xs: list) -> float:
    """Sum the amounts."""
    return sum(xs)
'''
B = '''import json


def parse_date(s):
    """Worse version."""
    return s


def add_up(xs: list[float]) -> float:
    """Add the amounts (same body as total)."""
    return sum(xs)


def report(xs):
    return json.dumps({"total": add_up(xs)})


def stub_one():
    """Not written yet."""


def stub_two():
    """Not written either."""
'''


def test_merge_keeps_best_version_and_drops_behavioural_duplicate():
    merged = merge_toolboxes([(B, 0.4), (A, 0.7)])
    tools = {t.name: t for t in parse_toolbox(merged)}
    assert list(tools) == ["parse_date", "total", "report", "stub_one", "stub_two"]
    assert tools["parse_date"].docstring == "Best version."  # from the better toolbox
    assert "add_up" not in tools  # same body as total under another name
    # report still calls add_up, so an alias keeps it working (not exposed as a tool)
    assert "add_up = total" in merged
    assert merged.index("import re") < merged.index("import json")
    ns: dict = {}
    exec(compile(merged, "<merged>", "exec"), ns)
    assert ns["report"]([1.0, 2.0]) == '{"total": 3.0}'
    # deterministic, and ties keep the first toolbox
    assert merge_toolboxes([(B, 0.4), (A, 0.7)]) == merged
    tie = parse_toolbox(merge_toolboxes([(B, 0.5), (A, 0.5)]))
    assert {t.name: t for t in tie}["parse_date"].docstring == "Worse version."
    assert merge_toolboxes([]) == ""


def test_check_merged_toolbox_reports_lost_tools():
    pairs = [(A, 0.7), (B, 0.4)]
    assert check_merged_toolbox(merge_toolboxes(pairs), pairs) == []
    lossy = A  # lost report and the stubs; add_up is covered by total's behaviour
    problems = check_merged_toolbox(lossy, pairs)
    assert problems == ["the merge lost tool report", "the merge lost tool stub_one",
                        "the merge lost tool stub_two"]
    assert "syntax error" in check_merged_toolbox("def (", pairs)[0]


def test_similarity_text_has_names_docstrings_identifiers():
    text = toolbox_text_for_similarity(SOURCE)
    for word in ("find_reference", "reference", "add_tax", "tax", "findall", "amount",
                 "Find the transport reference number."):
        assert word in text
    assert toolbox_text_for_similarity("def (") == "def ("  # never raises


def _deep_default(terms: int) -> str:
    """A tool whose default value adds ``terms`` ones: nesting as deep as the sum is long."""
    return f'def deep(x: int = {"+".join(["1"] * terms)}) -> int:\n    """Deep."""\n    return x\n'


@pytest.mark.parametrize("terms", [300, 600, 5000])
def test_a_deeply_nested_toolbox_is_a_malformed_reply(terms):
    from fgo_engine.suites.tools.library import INITIAL_TOOLBOX
    from fgo_engine.suites.tools.suite import ToolsSuite

    deep = INITIAL_TOOLBOX + "\n\n" + _deep_default(terms)
    for attempt in (lambda: parse_toolbox(deep), lambda: merge_toolboxes([(deep, 1.0), (INITIAL_TOOLBOX, 0.5)]),
                    lambda: ToolsSuite(n_train=0, n_test=0).validate_module(deep),
                    lambda: apply_edits(INITIAL_TOOLBOX, [{"op": "add", "name": "deep", "source": _deep_default(terms)}])):
        with pytest.raises(MalformedOutputError, match="nested too deeply"):
            attempt()


def test_ordinary_nesting_still_parses():
    tools = parse_toolbox(_deep_default(40))
    assert [t.name for t in tools] == ["deep"] and tool_schemas(tools)
