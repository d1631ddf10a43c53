from __future__ import annotations

from importlib.metadata import version

import aiodynkv
import aiodynkv.testing


def test_public_surface_is_exactly_this() -> None:
    assert aiodynkv.__all__ == sorted(aiodynkv.__all__)
    assert set(aiodynkv.__all__) == {
        "MISSING", "AccessDeniedError", "AsyncDynamoKV", "BatchIncompleteError",
        "ConditionFailedError", "Health", "InsecureEndpointWarning",
        "InvalidKeyError", "KVConfig", "KVConfigError",
        "KVConnectionError", "KVError", "KVStore", "KVTimeoutError", "KVValidationError",
        "KeyNotFoundError", "ServerError", "StoreClosedError", "TableNotFoundError",
        "ThrottledError", "TransientError", "ValueTooLargeError", "WrongTypeError",
        "__version__", "from_json", "to_json",
    }  # fmt: skip
    for name in aiodynkv.__all__:
        assert getattr(aiodynkv, name) is not None


def test_testing_surface() -> None:
    assert aiodynkv.testing.__all__ == sorted(aiodynkv.testing.__all__)
    assert set(aiodynkv.testing.__all__) == {
        "InMemoryKV", "LocalDynamoDB", "LocalServerError", "docker_available", "find_dynalite",
    }  # fmt: skip


def test_version_comes_from_the_installed_metadata() -> None:
    assert aiodynkv.__version__ == version("aiodynkv")


def test_both_stores_satisfy_the_protocol() -> None:
    store = aiodynkv.AsyncDynamoKV(table="t")
    memory = aiodynkv.testing.InMemoryKV()
    assert isinstance(store, aiodynkv.KVStore)
    assert isinstance(memory, aiodynkv.KVStore)
    protocol = {n for n in dir(aiodynkv.KVStore) if not n.startswith("_")}
    assert protocol <= set(dir(store))
    assert protocol <= set(dir(memory))
