"""Hard line: Visage never infers or exposes race, ethnicity, religion, gender, age or
emotion. This test walks every output schema and every CLI option and fails if a field or
option for such an attribute appears."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator

import typer
from pydantic import BaseModel

import visage
import visage.usecases
from visage.cli import app

FORBIDDEN = re.compile(
    r"(^|_)(race|racial|ethnic\w*|religio\w*|gender|sex|age|age_\w+|emotion\w*|mood|"
    r"expression|skin_?tone|nationality)($|_)",
    re.IGNORECASE,
)


def _output_models() -> Iterator[type[BaseModel]]:
    for info in pkgutil.walk_packages(visage.__path__, "visage."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                yield value


def _field_names(model: type[BaseModel]) -> Iterator[str]:
    schema = model.model_json_schema()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    yield from value.keys()
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def test_schemas_have_no_sensitive_attribute() -> None:
    models = list(_output_models())
    assert len(models) > 10  # the walk really found the schemas
    for model in models:
        for name in _field_names(model):
            assert not FORBIDDEN.search(name), f"{model.__name__}.{name} is a forbidden field"


def test_cli_has_no_sensitive_attribute_option() -> None:
    command = typer.main.get_command(app)
    seen = 0

    def walk(cmd: object, path: str) -> None:
        nonlocal seen
        for param in getattr(cmd, "params", []):
            for opt in [param.name or "", *getattr(param, "opts", [])]:
                seen += 1
                assert not FORBIDDEN.search(opt.lstrip("-").replace("-", "_")), (path, opt)
        for name, sub in getattr(cmd, "commands", {}).items():
            assert not FORBIDDEN.search(name.replace("-", "_")), name
            walk(sub, f"{path} {name}")

    walk(command, "visage")
    assert seen > 10


def test_the_pattern_catches_what_it_must() -> None:
    for bad in ("age", "estimated_age", "gender", "ethnicity", "emotion_scores", "race"):
        assert FORBIDDEN.search(bad), bad
    for fine in ("image", "average", "stage", "page", "storage", "message", "usage"):
        assert not FORBIDDEN.search(fine), fine
