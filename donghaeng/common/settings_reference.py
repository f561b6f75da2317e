"""``docs/settings.md``, generated from the settings schema, so the reference never drifts from what loads.

    python -m donghaeng.common.settings_reference > docs/settings.md

(``tests/test_hub_config.py`` fails when the file is not what this prints.)
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from donghaeng.common.settings import Settings

HEADER = """# lab.toml 설정 모음 / Settings reference

이 파일은 `python -m donghaeng.common.settings_reference`가 설정 스키마에서 만들어요. 직접 고치지 말고 스키마의
설명을 고쳐 주세요. 예시와 설명은 `hub/lab.toml`에 있어요. 모르는 키나 잘못된 값은 시작할 때 어디가
틀렸는지 알려 줘요.

Generated from the settings schema (`donghaeng/common/settings.py`); edit the schema's descriptions, not this file.
`hub/lab.toml` has a commented example of every table. Unknown keys and bad values stop the start with the place.
"""


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None)) + " (optional)"
    if origin in (list, dict):
        return f"{origin.__name__} of " + ", ".join(_type_name(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(table)"
    if value is None:
        return ""
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} entries"
    return f"`{value}`".replace("|", "\\|")


def _model(annotation: object) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _tables(model: type[BaseModel], name: str, array: bool = False) -> Iterator[str]:
    rows, nested = [], []
    for key, field in model.model_fields.items():
        sub = _model(field.annotation)
        if sub is not None and typing.get_origin(field.annotation) is not dict:
            nested.append((sub, f"{name}.{key}" if name else key, typing.get_origin(field.annotation) is list))
            continue
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    if name and rows:
        heading = f"[[{name}]]" if array else f"[{name}]"
        doc = " ".join((model.__doc__ or "").split())
        intro = f"{doc}\n\n" if doc else ""
        yield f"\n## `{heading}`\n\n{intro}| key | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    for sub, sub_name, sub_array in nested:
        yield from _tables(sub, sub_name, sub_array)


def reference() -> str:
    fields = {k: v for k, v in Settings.model_fields.items() if k != "source"}
    body = [table for key, field in fields.items() if (sub := _model(field.annotation))
            for table in _tables(sub, key, typing.get_origin(field.annotation) is list)]
    return HEADER + "".join(body) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
