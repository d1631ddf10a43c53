from __future__ import annotations

import pickle
import traceback
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiodynkv
import aiodynkv._errors
import aiodynkv.testing


def test_public_surface_is_exactly_this() -> None:
    assert aiodynkv.__all__ == sorted(aiodynkv.__all__)
    assert set(aiodynkv.__all__) == {
        "MISSING", "TTL", "AccessDeniedError", "AsyncDynamoKV", "BatchIncompleteError",
        "ConditionFailedError", "CorruptItemError", "Health", "InsecureEndpointWarning",
        "InvalidKeyError", "KVConfig", "KVConfigError",
        "KVConnectionError", "KVError", "KVStore", "KVTimeoutError", "KVValidationError",
        "KeyListing", "KeyNotFoundError", "ServerError", "StoreClosedError", "StoredItem",
        "TableNotFoundError", "ThrottledError", "TransientError", "Value",
        "ValueTooLargeError", "WrongTypeError", "__version__", "from_json", "to_json",
        # coordination
        "LeaseLostError", "Lock", "LockNotAcquiredError", "ShardedCounter", "Transaction",
        "TransactionFailedError", "TransactionReason",
        # data features
        "DecryptionError", "TypedView",
        # S3 and KMS refusals
        "BucketNotFoundError", "EncryptionKeyError",
        # writes whose outcome is unknown
        "WriteInDoubtError",
    }  # fmt: skip
    for name in aiodynkv.__all__:
        assert getattr(aiodynkv, name) is not None


def test_testing_surface() -> None:
    assert aiodynkv.testing.__all__ == sorted(aiodynkv.testing.__all__)
    assert set(aiodynkv.testing.__all__) == {
        "ImageUnavailableError", "InMemoryKV", "LocalDynamoDB", "LocalServerError",
        "docker_available", "find_dynalite", "set_retry_waits",
    }  # fmt: skip


def test_version_comes_from_the_installed_metadata() -> None:
    assert aiodynkv.__version__ == version("aiodynkv")


def test_every_public_error_is_a_kv_error_and_exported_from_the_errors_module() -> None:
    errors = [
        getattr(aiodynkv, name)
        for name in aiodynkv.__all__
        if name.endswith("Error") and isinstance(getattr(aiodynkv, name), type)
    ]
    assert errors
    for cls in errors:
        assert issubclass(cls, aiodynkv.KVError), cls
        assert cls.__name__ in aiodynkv._errors.__all__
        assert getattr(aiodynkv._errors, cls.__name__) is cls
    assert issubclass(aiodynkv.InsecureEndpointWarning, UserWarning)


def test_exceptions_and_warnings_report_the_public_module() -> None:
    public = [
        getattr(aiodynkv, name)
        for name in aiodynkv.__all__
        if isinstance(getattr(aiodynkv, name), type)
        and issubclass(getattr(aiodynkv, name), BaseException)
    ]
    assert len(public) > 20
    for cls in public:
        assert cls.__module__ == "aiodynkv", cls
        assert getattr(aiodynkv, cls.__qualname__) is cls
        error = _example(cls)
        shown = traceback.format_exception_only(error)
        assert shown[-1].startswith(f"aiodynkv.{cls.__name__}: "), shown
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is cls
        assert str(clone) == str(error)


def _example(cls: type[BaseException]) -> BaseException:
    """An instance of an exported exception class, built with its required arguments."""
    required: dict[str, dict[str, Any]] = {
        "BatchIncompleteError": {"unprocessed": ()},
        "ValueTooLargeError": {"size": 1, "limit": 1},
    }
    if cls is aiodynkv.KVConfigError:
        return cls("table", "boom")
    return cls("boom", **required.get(cls.__name__, {}))


def test_public_objects_come_from_private_modules() -> None:
    for name in aiodynkv.__all__:
        module = getattr(getattr(aiodynkv, name), "__module__", None)
        if isinstance(module, str) and module.startswith("aiodynkv."):
            assert module.split(".")[1].startswith("_"), (name, module)


def test_both_stores_satisfy_the_protocol() -> None:
    # Typed as object: this checks the runtime protocol (isinstance), not static typing.
    store: object = aiodynkv.AsyncDynamoKV(table="kvt")
    memory: object = aiodynkv.testing.InMemoryKV()
    assert isinstance(store, aiodynkv.KVStore)
    assert isinstance(memory, aiodynkv.KVStore)
    protocol = {n for n in dir(aiodynkv.KVStore) if not n.startswith("_")}
    assert protocol <= set(dir(store))
    assert protocol <= set(dir(memory))


def test_the_s3_and_kms_refusals_are_rows_of_the_error_table() -> None:
    root = Path(__file__).resolve().parents[2]
    text = "\n".join(
        path.read_text(encoding="utf-8")
        for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    )
    for cls in (aiodynkv.BucketNotFoundError, aiodynkv.EncryptionKeyError):
        assert f"| `{cls.__name__}` | no |" in text, cls
