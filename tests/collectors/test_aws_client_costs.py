"""What botocore builds per client, shared (collectors/aws/client_costs.py): every part in place
with the pinned botocore, and each exactly equivalent to what botocore builds."""
from __future__ import annotations

import copy
import gc
import weakref

import boto3
import botocore.hooks
import pytest
from hypothesis import given, settings, strategies as st

from collectors.aws import client_costs
from collectors.aws.client_costs import BotocoreTrie, SharedTrie
from collectors.aws.session import Clients

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
    first, second = (Clients(boto3.Session(region_name=HOME), moto) for _ in range(2))
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
    assert alone.meta.service_model.operation_names == a.meta.service_model.operation_names
    assert a.describe_db_instances()["DBInstances"] == []
    assert alone.describe_db_instances()["DBInstances"] == []


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
