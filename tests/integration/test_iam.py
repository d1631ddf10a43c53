"""The documented IAM policy (docs/iam-policy.json), proven per feature on moto with IAM on.

moto's server enforces IAM once it has served ``INITIAL_NO_AUTH_ACTION_COUNT``
requests: the first ones create an admin user, and from then on every request must
be signed by a known access key whose policies allow it. Each test creates a user,
attaches a policy made of some of the documented statements, and runs a feature
with that user's credentials:

- under exactly the statements the feature is documented to need, it works;
- without one of them, the feature's call raises `AccessDeniedError`.

What moto checks, and so what this proves (moto 5): the action of every DynamoDB,
KMS and S3 request, and the object ARN of S3 requests. It authorizes DynamoDB and
KMS requests against the resource ``"*"``, so the table and key ARNs of the
documented statements become ``"*"`` here: their actions are proven, their ARNs
are not. moto authorizes a transaction by its API name (``dynamodb:TransactWriteItems``,
``dynamodb:TransactGetItems``), which AWS does not know as IAM actions: AWS
authorizes each member of a transaction by its item action (``UpdateItem``,
``DeleteItem``, ``GetItem``, and ``ConditionCheckItem`` for a check). The
transactions statement gets moto's two names added here; ``ConditionCheckItem`` is
in the documented statement for AWS and moto never asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aioboto3
import pytest
from botocore.exceptions import ClientError

from aiodynkv import AccessDeniedError, AsyncDynamoKV
from aiodynkv.testing import LocalDynamoDB

POLICY = Path(__file__).parents[2] / "docs" / "iam-policy.json"
_REGION = "us-east-1"
_ACCOUNT = "123456789012"  # moto's default account
# Requests moto serves before it enforces IAM: LocalDynamoDB's readiness probe, then
# CreateUser, CreateAccessKey and PutUserPolicy for the admin user.
_UNAUTHENTICATED = 4
_TABLE = "iam-kv"
# What moto asks for instead of what AWS asks for (see the module docstring).
_MOTO_ALIASES = {
    "dynamodb:ConditionCheckItem": ["dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"],
}


@dataclass(frozen=True)
class Moto:
    """moto with IAM enforced: its endpoint, the admin's credentials, what the admin made."""

    endpoint: str
    admin: dict[str, str]
    bucket: str
    kms_key: str


def _session(credentials: dict[str, str]) -> Any:
    return aioboto3.Session(region_name=_REGION, **credentials)


async def _new_user(endpoint: str, credentials: dict[str, str], name: str) -> dict[str, str]:
    async with _session(credentials).client("iam", endpoint_url=endpoint) as iam:
        await iam.create_user(UserName=name)
        key = (await iam.create_access_key(UserName=name))["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


async def _prepare(endpoint: str) -> Moto:
    anyone = {"aws_access_key_id": "unchecked", "aws_secret_access_key": "unchecked"}
    admin = await _new_user(endpoint, anyone, "admin")
    everything = {"Version": "2012-10-17", "Statement": [_allow(["*"], "*")]}
    async with _session(anyone).client("iam", endpoint_url=endpoint) as iam:
        await iam.put_user_policy(
            UserName="admin", PolicyName="everything", PolicyDocument=json.dumps(everything)
        )
    # Enforcement is on from here: a key moto does not know is refused.
    async with _session(anyone).client("dynamodb", endpoint_url=endpoint) as dynamodb:
        with pytest.raises(ClientError, match=r"UnrecognizedClientException|InvalidClientTokenId"):
            await dynamodb.list_tables()
    async with _session(admin).client("s3", endpoint_url=endpoint) as s3:
        bucket = f"iam-{uuid.uuid4().hex[:12]}"
        await s3.create_bucket(Bucket=bucket)
    async with _session(admin).client("kms", endpoint_url=endpoint) as kms:
        kms_key = (await kms.create_key(Description="aiodynkv iam tests"))["KeyMetadata"]["KeyId"]
    moto = Moto(endpoint, admin, bucket, str(kms_key))
    with _credentials(admin):
        async with AsyncDynamoKV(table=_TABLE, endpoint=endpoint, create_table=True):
            pass
    return moto


def _allow(actions: list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


@contextlib.contextmanager
def _credentials(user: dict[str, str]) -> Iterator[None]:
    """The process's AWS credentials set to `user`'s for the block."""
    wanted = {
        "AWS_ACCESS_KEY_ID": user["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": user["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
    }
    saved = {name: os.environ.get(name) for name in wanted}
    try:
        for name, value in wanted.items():
            _put_env(name, value)
        yield
    finally:
        for name, value in saved.items():
            _put_env(name, value)


def _put_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with LocalDynamoDB(
        "moto", env={"INITIAL_NO_AUTH_ACTION_COUNT": str(_UNAUTHENTICATED)}
    ) as server:
        yield asyncio.run(_prepare(server.endpoint))


def documented() -> dict[str, dict[str, Any]]:
    """The statements of docs/iam-policy.json by Sid."""
    policy = json.loads(POLICY.read_text())
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def _for_moto(statement: dict[str, Any], moto: Moto) -> dict[str, Any]:
    """`statement` with its placeholders filled in, as moto can check it."""
    statement = copy.deepcopy(statement)
    actions = list(statement["Action"])
    for action in statement["Action"]:
        actions += _MOTO_ALIASES.get(action, [])
    statement["Action"] = actions
    resources = statement["Resource"]
    resources = [resources] if isinstance(resources, str) else resources
    filled = []
    for resource in resources:
        if resource.startswith(("arn:aws:dynamodb:", "arn:aws:kms:")):
            filled.append("*")  # moto authorizes these against "*" (see the module docstring)
        else:
            filled.append(
                resource.replace("BUCKET_NAME", moto.bucket).replace("TABLE_NAME", _TABLE)
            )
    statement["Resource"] = filled
    return statement


async def _user_with(moto: Moto, sids: list[str]) -> dict[str, str]:
    """A new user whose one attached policy holds the documented statements `sids`."""
    name = f"u-{uuid.uuid4().hex[:12]}"
    statements = documented()
    policy = {
        "Version": "2012-10-17",
        "Statement": [_for_moto(statements[sid], moto) for sid in sids if sid in statements],
    }
    user = await _new_user(moto.endpoint, moto.admin, name)
    if not policy["Statement"]:
        return user  # no policy at all (IAM refuses an empty one)
    async with _session(moto.admin).client("iam", endpoint_url=moto.endpoint) as iam:
        arn = (
            await iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        )["Policy"]["Arn"]
        await iam.attach_user_policy(UserName=name, PolicyArn=arn)
    return user


# -- the features, each as a series of calls -------------------------------------------

Feature = Callable[[AsyncDynamoKV], Awaitable[None]]


async def core(kv: AsyncDynamoKV) -> None:
    assert await kv.set("a", "1")
    assert await kv.get("a") == "1"
    assert await kv.get_with_version("a")
    assert not await kv.set("a", "2", if_absent=True)
    await kv.set_json("j", {"x": 1})
    assert await kv.get_json("j") == {"x": 1}
    assert await kv.exists("a")
    await kv.set("t", "v", ttl=60)
    left = await kv.ttl("t")
    assert left is not None
    assert 0 < left <= 60
    assert await kv.expire("a", 60)
    assert await kv.persist("a")
    assert await kv.incr("n") == 1
    await kv.set_counter("n", 5)
    await kv.set_many({"m1": "1", "m2": "2"})
    assert await kv.get_many(["m1", "m2", "none"]) == {"m1": "1", "m2": "2"}
    await kv.delete_many(["m1", "m2"])
    assert await kv.delete("a")
    assert (await kv.health()).status == "UP"


async def listing(kv: AsyncDynamoKV) -> None:
    await kv.set("l:1", "1")
    assert "l:1" in await kv.keys("l:")
    assert [item.key async for item in kv.items("l:")] == ["l:1"]
    assert await kv.clear() >= 1


async def transactions(kv: AsyncDynamoKV) -> None:
    await kv.set_many({"tx:0": "0", "tx:old": "x"})
    async with kv.transaction() as tx:
        tx.set("tx:1", "1")
        tx.incr("tx:n")
        tx.check("tx:0", exists=True)
        tx.delete("tx:old")
    assert await kv.get_many(["tx:1", "tx:n"], snapshot=True) == {"tx:1": "1", "tx:n": 1}


async def leases(kv: AsyncDynamoKV) -> None:
    lock = kv.lock("job", lease=5, wait=0)
    assert await lock.acquire() >= 1
    await lock.extend()
    await lock.release()


async def counters(kv: AsyncDynamoKV) -> None:
    counter = kv.counter("hits", shards=4)
    await counter.incr(3)
    assert await counter.value() == 3
    await counter.reset()
    await counter.delete()


async def offload(kv: AsyncDynamoKV) -> None:
    big = os.urandom(5_000)
    await kv.set("big", big)
    assert await kv.get("big") == big
    assert await kv.delete("big")  # and its object


async def encryption(kv: AsyncDynamoKV) -> None:
    await kv.set("secret", "s3cr3t")
    assert await kv.get("secret") == "s3cr3t"


async def table_management(kv: AsyncDynamoKV) -> None:
    await kv.ensure_table()
    assert (await kv.health()).status == "UP"


@dataclass(frozen=True)
class Case:
    """A feature, the statements it is documented to need, and how to configure the store."""

    run: Feature
    needs: list[str]
    fields: Callable[[Moto], dict[str, Any]] = lambda _moto: {}
    new_table: bool = False  # a table that does not exist yet


CASES = {
    "core": Case(core, ["AiodynkvCore"]),
    "listing": Case(listing, ["AiodynkvCore", "AiodynkvListing"]),
    "transactions": Case(transactions, ["AiodynkvCore", "AiodynkvTransactions"]),
    "leases": Case(leases, ["AiodynkvCore"]),
    "counters": Case(counters, ["AiodynkvCore"]),
    "offload": Case(
        offload,
        ["AiodynkvCore", "AiodynkvOffload"],
        lambda moto: {
            "large_value_bucket": moto.bucket,
            "large_value_threshold": 1_000,
            "compress_threshold": None,
        },
    ),
    "encryption": Case(
        encryption,
        ["AiodynkvCore", "AiodynkvEncryption"],
        lambda moto: {"encryption_kms_key_id": moto.kms_key},
    ),
    "table management": Case(
        table_management, ["AiodynkvCore", "AiodynkvTableManagement"], new_table=True
    ),
}


async def _run(
    moto: Moto, case: Case, sids: list[str], transport: Literal["lean", "botocore"] = "lean"
) -> None:
    user = await _user_with(moto, sids)
    with _credentials(user):
        kv = AsyncDynamoKV(
            table=f"iam-new-{uuid.uuid4().hex[:12]}" if case.new_table else _TABLE,
            endpoint=moto.endpoint,
            transport=transport,
            max_attempts=1,
            **case.fields(moto),
        )
        async with kv:
            await case.run(kv)


def test_every_statement_has_a_sid_and_is_needed_by_a_feature() -> None:
    statements = documented()
    assert len(statements) == len(json.loads(POLICY.read_text())["Statement"])  # Sids unique
    needed = {sid for case in CASES.values() for sid in case.needs}
    assert set(statements) == needed


@pytest.mark.parametrize("feature", list(CASES))
async def test_feature_works_under_exactly_its_documented_statements(
    moto: Moto, feature: str
) -> None:
    case = CASES[feature]
    await _run(moto, case, case.needs)


async def test_core_works_under_its_statement_through_botocore(moto: Moto) -> None:
    await _run(moto, CASES["core"], CASES["core"].needs, transport="botocore")


@pytest.mark.parametrize(
    ("feature", "missing"),
    [(feature, sid) for feature, case in CASES.items() for sid in case.needs],
)
async def test_feature_is_denied_without_each_of_its_statements(
    moto: Moto, feature: str, missing: str
) -> None:
    case = CASES[feature]
    with pytest.raises(AccessDeniedError):
        await _run(moto, case, [sid for sid in case.needs if sid != missing])
