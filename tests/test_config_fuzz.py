"""Fuzzing the config loader: any document gives a HubConfig or a ConfigError naming file, line and key.

Three shapes of input: mappings built from the real sections and keys of ``HubConfig`` with random
values, random text and bytes, and deep nesting. ``load_config`` reads each from a real file, so the
file name in the message is checked too. ``HUB_FUZZ_EXAMPLES`` sets the number of examples.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from ruamel.yaml import YAML

from hub.config import ConfigError, HubConfig, load_config, parse_config

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LINE = re.compile(r"line \d+")


def _sections(model: type[BaseModel]) -> dict[str, Any]:
    """The key tree of a config model: a nested model's keys, or None for a leaf."""
    tree: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        tree[name] = _sections(kind) if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    return tree


KEYS = _sections(HubConfig)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "embedded",
            "influxdb-v1",
            "influxdb-v2",
            "mqtt://127.0.0.1:1883",
            "127.0.0.1:8080",
            "~",
            "*",
            "#",
            "",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _documents(tree: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings of some of the real keys (plus an odd stranger), each a value of a random shape."""
    per_key = {name: (st.one_of(_documents(sub), values) if sub else values) for name, sub in tree.items()}
    return st.fixed_dictionaries({}, optional=per_key) | st.dictionaries(
        st.sampled_from([*sorted(tree), "unknown", "mqtt "]), values, max_size=3
    )


def _yaml(doc: Any) -> str:
    from io import StringIO

    out = StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


def assert_loads_or_names_the_problem(text: str | bytes) -> None:
    """``load_config`` of a real file: a HubConfig, or a ConfigError naming the file (and line, key)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hub.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            config = load_config(path)
        except ConfigError as exc:
            message = str(exc)
            assert message, "an empty config error"
            assert "Traceback" not in message
            for problem in message.splitlines():
                assert problem.startswith(str(path)), f"the file is not named: {problem!r}"
                if ", key " in problem:
                    assert LINE.search(problem), f"a key without its line: {problem!r}"
            return
    assert isinstance(config, HubConfig)


@FUZZ
@given(_documents(KEYS))
def test_a_mapping_of_real_keys_with_random_values_loads_or_names_file_line_and_key(doc: dict) -> None:
    assert_loads_or_names_the_problem(_yaml(doc))


@FUZZ
@given(st.text(max_size=300))
def test_random_text_loads_or_names_the_file(text: str) -> None:
    assert_loads_or_names_the_problem(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_load_or_name_the_file(data: bytes) -> None:
    assert_loads_or_names_the_problem(data)


@settings(FUZZ, max_examples=min(EXAMPLES, 40))
@given(st.integers(min_value=1, max_value=600), st.sampled_from(["mapping", "list", "flow", "alias"]))
def test_deep_nesting_is_refused_with_the_file_named(depth: int, shape: str) -> None:
    """Past 32 levels (or 100,000 values, aliases expanded) a document is refused before validation."""
    if shape == "mapping":
        text = "".join(f"{'  ' * i}k{i}:\n" for i in range(min(depth, 400))) + "  " * depth + "x: 1\n"
        text = "mqtt:\n" + "\n".join("  " + line for line in text.splitlines())
    elif shape == "list":
        text = "alerts:\n  rules: " + "[" * depth + "]" * depth + "\n"
    elif shape == "flow":
        text = "ingest: " + "{a: " * depth + "1" + "}" * depth + "\n"
    else:  # a billion laughs, in small
        text = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(min(depth, 20))
        )
    assert_loads_or_names_the_problem(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mqtt: {url: \x00}\n", "line 1"),
        ("? [a, b]\n: c\n", "line 1"),
        ("mqtt:\n  keepalive: 30\n  keepalive: 40\n", "line 3"),
        ("web: !!binary aGVsbG8=\n", "key web"),
        ("alerts:\n  rules: [{kind: threshold}]\n", "key alerts.rules"),
        ("ingest:\n  rules: [{topic: 'a/[/b', thing: x}]\n", "key ingest.rules"),
        ("\ufeffmqtt: {qos: 2}\n", "key mqtt.qos"),
        ("mqtt: &m {qos: *m}\n", "key mqtt.qos"),
    ],
)
def test_awkward_documents_are_refused_by_line_or_key(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "hub.yaml")
    assert str(refused.value).startswith("hub.yaml"), str(refused.value)
    assert says in str(refused.value), str(refused.value)
