"""What botocore builds per client, shared (collectors/aws/client_costs.py): every part in place
with the pinned botocore, and each exactly equivalent to what botocore builds."""
from __future__ import annotations

import copy
import gc
import weakref

import boto3
import botocore.hooks
import botocore.loaders
import pytest
from hypothesis import given, settings, strategies as st

from collectors.aws import client_costs
from collectors.aws.client_costs import BotocoreTrie, SharedTrie
from collectors.aws.session import Clients
from collectors.aws.specs import client_operations

HOME = "us-east-1"


def test_every_part_is_in_place_with_the_botocore_attest_pins():
    """A botocore release that renames what a part replaces turns that part off (results stay
    right, the cost comes back): this test is how CI says so."""
    assert client_costs.INSTALLED == {"classes", "service models", "handlers", "aliases"}
    assert client_costs.install() == client_costs.INSTALLED       # again: harmless
    assert botocore.hooks._PrefixTrie is SharedTrie


def test_clients_share_their_class_and_model_and_a_dropped_client_is_freed_at_once(moto):
    """botocore builds each client a class of its own (hundreds of methods), and a dropped
    client is then ~1,500 objects in cycles only a full garbage collection frees. attest keeps
    one class and one service model per service: two accounts' clients in two regions share
    them, work, and a dropped client is freed by reference counting alone."""
    from collectors.aws.session import share_models
    sessions = [boto3.Session(region_name=HOME) for _ in range(2)]
    for session in sessions:
        share_models(session)      # as every account's session is (Account.open)
    first, second = (Clients(session, moto) for session in sessions)
    here, there = first.get("ec2", HOME), second.get("ec2", "eu-west-1")
    assert type(here) is type(there) and here is not there
    assert here.meta.region_name == HOME and there.meta.region_name == "eu-west-1"
    assert type(first.get("s3", HOME)) is not type(here)           # one class per service
    assert there.describe_vpcs()["Vpcs"]                               # moto's default VPC
    assert here.describe_vpcs()["Vpcs"]
    assert callable(getattr(first.get("s3", HOME), "upload_file"))  # boto3's injected methods
    gone = weakref.ref(there)
    gc.collect()
    gc.disable()
    try:
        del there
        second.drop_region("eu-west-1")
        assert gone() is None
        assert gc.collect() < 300      # its parser and pieces, ~100 objects (a class: ~1,500)
    finally:
        gc.enable()


def test_a_service_model_is_shared_only_over_the_same_loaded_json(moto):
    """Clients whose sessions share botocore's loader (as every account of a scan does) share
    the model; a session with its own loader gets a model over its own JSON."""
    from collectors.aws.session import share_models
    shared = [boto3.Session(region_name=HOME) for _ in range(2)]
    for session in shared:
        share_models(session)
    a, b = (s.client("rds", region_name=r, endpoint_url=moto)
            for s, r in zip(shared, (HOME, "eu-west-1")))
    assert a.meta.service_model is b.meta.service_model
    alone = boto3.Session(region_name=HOME).client("rds", endpoint_url=moto)
    assert alone.meta.service_model is not a.meta.service_model
    # the shared loader's model holds the operations attest calls; a loader of its own, all
    assert set(a.meta.service_model.operation_names) == client_operations()["rds"]
    assert set(a.meta.service_model.operation_names) < set(alone.meta.service_model.operation_names)
    assert type(alone) is not type(a) and hasattr(alone, "create_db_instance")
    assert not hasattr(a, "create_db_instance")
    assert a.describe_db_instances()["DBInstances"] == []
    assert alone.describe_db_instances()["DBInstances"] == []
    # and after it, a client of the shared loader again gets the shared (trimmed) class
    again = shared[0].client("rds", region_name=HOME, endpoint_url=moto)
    assert type(again) is type(a) and not hasattr(again, "create_db_instance")


def _full_model(service: str) -> dict:
    return botocore.loaders.create_loader().load_service_model(service, "service-2")


def _reachable(model: dict, operations: set[str]) -> set[str]:
    """Every shape an operation's input, output or errors reach, read from the full model
    through botocore's own ServiceModel (not through the trimming code under test)."""
    import botocore.model
    service = botocore.model.ServiceModel(model)
    seen: set[str] = set()

    def walk(shape: object) -> None:
        if shape is None or shape.name in seen:
            return
        seen.add(shape.name)
        for child in (getattr(shape, "members", None) or {}).values():
            walk(child)
        for attr in ("member", "key", "value"):
            walk(getattr(shape, attr, None))
    for name in operations:
        op = service.operation_model(name)
        for shape in (op.input_shape, op.output_shape, *op.error_shapes):
            walk(shape)
    return seen


def test_every_operation_attest_calls_is_kept_and_is_one_botocore_knows():
    """A client of a trimmed model has no method for an operation left out: every operation
    the AWS collector's code names (a literal call or paginate, or a client method) must be
    kept, and every one kept must exist (a typo, or an operation botocore renamed, fails here)."""
    import ast
    import pathlib
    import botocore
    kept = client_operations()
    for service, operations in kept.items():
        assert operations <= set(_full_model(service)["operations"]), service
    snake = {botocore.xform_name(op): (service, op) for service in kept
             for op in _full_model(service)["operations"]}
    named: set[tuple[str, str]] = set()
    for path in pathlib.Path(client_costs.__file__).parent.glob("*.py"):
        if path.name.startswith("demo"):    # seeds the demo's moto with clients of its own
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            args = node.args
            if (node.func.attr in ("call", "paginate") and len(args) >= 2
                    and all(isinstance(a, ast.Constant) for a in args[:2])):
                named.add((args[0].value, args[1].value))
            elif node.func.attr in snake:          # e.g. sts.assume_role(...)
                named.add(snake[node.func.attr])
    assert ("sts", "AssumeRole") in named and ("cloudtrail", "GetTrailStatus") in named
    missing = sorted(f"{service}:{op}" for service, op in named if op not in kept.get(service, ()))
    assert missing == []


@pytest.mark.parametrize("service", ["ec2", "s3", "securityhub", "rds"])
def test_a_trimmed_model_keeps_exactly_the_shapes_its_operations_reach(service):
    full = _full_model(service)
    operations = client_operations()[service]
    trimmed = client_costs.trim_model(full, operations)
    assert set(trimmed["operations"]) == operations
    assert set(trimmed["shapes"]) == _reachable(full, operations)
    assert trimmed["metadata"] == full["metadata"] and len(full["operations"]) > len(operations)
    assert set(full["operations"]) > operations     # the loaded model itself is not changed


def test_every_trimmed_model_botocore_loads_is_whole_extras_included():
    """botocore merges a service's extras into its model after loading it (RDS, S3 add members
    to shapes): none may bring back a shape left out without its type, or botocore's error
    shapes (read when an answer is an error) break on it."""
    import botocore.model
    loader = client_costs.trimmed_loader(None, client_operations())
    for service, operations in client_operations().items():
        model = loader.load_service_model(service, "service-2")
        assert set(model["operations"]) == operations
        assert all("type" in shape for shape in model["shapes"].values()), service
        service_model = botocore.model.ServiceModel(model, service)
        assert [service_model.shape_for(name) for name in service_model.shape_names]
        assert service_model.error_shapes is not None
    rds = loader.load_service_model("rds", "service-2")
    assert "CopyDBClusterSnapshotMessage" not in rds["shapes"]   # the extras merge into it


def test_the_trimmed_models_are_a_fraction_of_the_whole():
    """What the trimming is for: the models a scan loads, measured as JSON text."""
    import json
    whole = trimmed = 0
    for service, operations in client_operations().items():
        full = _full_model(service)
        whole += len(json.dumps(full))
        trimmed += len(json.dumps(client_costs.trim_model(full, operations)))
    assert trimmed < whole / 10


def test_a_clients_own_handlers_never_reach_its_session_or_another_client(moto):
    """The handler tries share their nodes: what one client registers (here a handler that
    rewrites every request of its own) stays its own, and the session's later handlers reach
    clients made after them only."""
    session = boto3.Session(region_name=HOME)
    one, two = (session.client("sts", endpoint_url=moto) for _ in range(2))
    seen: list[str] = []
    one.meta.events.register("before-call.sts.GetCallerIdentity",
                             lambda **_: seen.append("one"))
    assert one.get_caller_identity()["Account"] and two.get_caller_identity()["Account"]
    assert seen == ["one"]
    session.events.register("before-call.sts.GetCallerIdentity", lambda **_: seen.append("session"))
    three = session.client("sts", endpoint_url=moto)
    three.get_caller_identity()
    two.get_caller_identity()
    assert seen == ["one", "session"]
    assert copy.copy(session._session.get_component("event_emitter"))._emitter._handlers._root \
        is session._session.get_component("event_emitter")._emitter._handlers._root


def test_an_alias_cache_is_shared_by_the_copies_of_one_aliaser():
    emitter = botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter())
    clone = copy.copy(emitter)
    assert clone._alias_name_cache is emitter._alias_name_cache
    assert clone._alias_event_name("before-call.autoscaling.Describe") == \
        botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter())._alias_event_name(
            "before-call.autoscaling.Describe")


# --- the shared trie against botocore's: random families of copies, the same answers ---------

KEYS = ["a", "a.b", "a.b.c", "a.*.c", "a.x", "b", "b.c.d", "*", "a.b.*", "c.d"]
SEARCHES = ["a", "a.b", "a.b.c", "a.z.c", "a.x", "b.c.d", "b", "c.d", "a.b.c.d", "q"]

step = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 3), st.sampled_from(KEYS), st.integers(0, 5),
              st.integers(0, 2)),
    st.tuples(st.just("remove"), st.integers(0, 3), st.sampled_from(KEYS), st.integers(0, 5)),
    st.tuples(st.just("copy"), st.integers(0, 3)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_the_shared_trie_answers_as_botocores_through_any_copies_and_changes(steps):
    """The same operations on a family of botocore tries and of shared tries (each copy then
    changed on its own, as a session and its clients are): every trie of the family answers
    every search the same, handlers in the same order, after every step."""
    theirs, ours = [BotocoreTrie()], [SharedTrie()]
    for op, which, *rest in steps:
        i = which % len(theirs)
        if op == "copy":
            theirs.append(copy.copy(theirs[i]))
            ours.append(copy.copy(ours[i]))
        elif op == "add":
            key, value, section = rest
            theirs[i].append_item(key, value, section)
            ours[i].append_item(key, value, section)
        else:
            key, value = rest
            outcome = []
            for trie in (theirs[i], ours[i]):
                try:
                    trie.remove_item(key, value)
                    outcome.append(None)
                except (ValueError, AttributeError, TypeError) as exc:
                    outcome.append(type(exc))
            assert outcome[0] == outcome[1]
        for t, o in zip(theirs, ours):
            for search in SEARCHES:
                assert list(o.prefix_search(search)) == list(t.prefix_search(search)), search


def test_a_trie_copy_is_constant_time_and_a_change_copies_its_path_only():
    trie = SharedTrie()
    for key in ("a", "a.b", "a.b.c", "b.c"):
        trie.append_item(key, key)
    clone = copy.copy(trie)
    assert clone._root is trie._root
    clone.append_item("a.b.c", "mine")
    assert clone._root is not trie._root
    assert clone._root["children"]["b"] is trie._root["children"]["b"]   # off the path: shared
    assert list(trie.prefix_search("a.b.c")) == ["a.b.c", "a.b", "a"]
    assert list(clone.prefix_search("a.b.c")) == ["a.b.c", "mine", "a.b", "a"]
    trie.remove_item("a.b", "a.b")
    assert list(trie.prefix_search("a.b.c")) == ["a.b.c", "a"]
    assert list(clone.prefix_search("a.b.c")) == ["a.b.c", "mine", "a.b", "a"]


@pytest.mark.parametrize("count", [2])
def test_many_sessions_clients_all_work(moto, count):
    """Clients of several sessions and services, made and used in turn, answer as moto does."""
    for _ in range(count):
        session = boto3.Session(region_name=HOME)
        for service, call in (("sts", "get_caller_identity"), ("ec2", "describe_vpcs"),
                              ("s3", "list_buckets"), ("iam", "get_account_summary")):
            assert getattr(session.client(service, endpoint_url=moto), call)()


def test_the_service_models_are_let_go_of_when_the_aws_collection_ends(moto):
    """Judging and reporting need none of botocore's models (tens of MB at every region): when
    the collection ends, the shared loader, classes and models go; a later one loads them again."""
    from datetime import datetime, timezone

    from collectors.aws import session as aws_session
    from collectors.aws.collector import AwsCollector
    from collectors.aws.source import Config
    from collectors.base import CollectContext
    for _ in range(2):
        records = AwsCollector(Config(endpoint_url=moto, regions=[HOME])).collect(
            CollectContext(now=datetime.now(timezone.utc)))
        first = next(records)
        assert first.state.known and aws_session._LOADER is not None   # in use while collecting
        assert client_costs._classes and client_costs._models
        rest = list(records)
        assert len(rest) > 20 and all(r.state.known for r in rest)
        assert aws_session._LOADER is None
        assert not client_costs._classes and not client_costs._models


def test_a_part_whose_botocore_internal_is_gone_is_skipped_not_a_crash(monkeypatch):
    """A botocore release without what a part replaces: that part is left out (the results stay
    right), nothing fails at import; the first test of this file is what then fails in CI."""
    import botocore.client
    monkeypatch.delattr(botocore.client.ClientCreator, "_load_service_model")
    assert client_costs._tried(client_costs._share_service_models) is False
    monkeypatch.delattr(botocore.hooks, "HierarchicalEmitter")
    assert client_costs._tried(client_costs._share_alias_caches) is False
