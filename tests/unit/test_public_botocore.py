"""No module of the package touches a private attribute of a botocore or aiobotocore object.

The names come from real objects: a DynamoDB client (its request signer, endpoint, HTTP
session, credentials, config), its session, loader and credential resolver. A module
that reads or writes one of them on anything but ``self``/``cls`` (``x._name``, or
``getattr(x, "_name")``) fails the test, so a botocore upgrade cannot break it unseen.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import aiodynkv

PACKAGE = Path(aiodynkv.__file__).parent
_ACCESSORS = {"getattr", "setattr", "hasattr", "delattr"}
# The same names on aiodynkv's own objects (a botocore name is no reserved word).
_OWN = {"tel._cache"}  # aiodynkv._telemetry.Telemetry


def _private_names(*objects: Any) -> set[str]:
    names: set[str] = set()
    for obj in objects:
        found = set(dir(type(obj))) | set(getattr(obj, "__dict__", {}))
        names |= {n for n in found if n.startswith("_") and not n.startswith("__")}
    return names


async def _botocore_private_names() -> set[str]:
    from aiobotocore.session import AioSession

    session = AioSession()
    session.set_credentials("AKID", "secret")
    async with session.create_client("dynamodb", region_name="us-east-1") as client:
        # this test may look inside: that is what it is for
        signer = client._request_signer
        endpoint = client._endpoint
        return _private_names(
            client,
            client.meta,
            client.meta.config,
            signer,
            endpoint,
            endpoint.http_session,
            await session.get_credentials(),
            session,
            session.get_component("data_loader"),
            session.get_component("credential_provider"),
        )


def _offences(source: str, denied: set[str]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in denied:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}):
                found.append((node.lineno, f"{ast.unparse(owner)}.{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in denied
        ):
            found.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
    return found


async def test_no_module_touches_a_private_botocore_attribute() -> None:
    denied = await _botocore_private_names()
    assert {"_request_signer", "_credentials", "_endpoint", "_resolve_endpoint_ruleset"} <= denied
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in _offences(path.read_text(), denied)
        if text not in _OWN
    ]
    assert offences == []


def test_the_scan_sees_what_it_must() -> None:
    denied = {"_request_signer", "_credentials", "_endpoint"}
    source = (
        "a = client._request_signer._credentials\n"
        "b = getattr(client, '_endpoint', None)\n"
        "session._credentials = 1\n"
        "self._credentials = 2\n"
        "c = store._core\n"
    )
    assert sorted(line for line, _ in _offences(source, denied)) == [1, 1, 2, 3]
