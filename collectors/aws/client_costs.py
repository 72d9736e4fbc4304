"""What a boto3 client costs, cut for a scan that makes thousands of them.

An organization read across every region needs a client per account, region and service (the
benchmark's full size: about 7,000, two or three calls each). botocore builds each client from
scratch, and at that count building them was a third of the scan's CPU and most of its garbage:

1. **its class**: a new class per client, with a method per operation (EC2: about 700), left
   in reference cycles that only a full garbage collection frees;
2. **its service model**: a new ``ServiceModel`` over the same JSON, whose shapes and operation
   models are then built again, lazily, for the client's first calls;
3. **its event handlers**: a deep copy of its session's handler trie (about 200 nodes, 90 KB,
   three quarters of a new client's memory);
4. **its event-name aliases**: an empty cache, so every event name is aliased again.

Each is shared here, exactly equivalent to what botocore builds:

1. one class per service and API version (it depends only on the service model and on the
   ``creating-client-class`` handlers, the same in every boto3 session);
2. one ``ServiceModel`` per service and loaded JSON model (it only reads the JSON and caches
   what it derives from it);
3. a copy of the handler trie shares every node with the original until one side changes one:
   the change copies only the nodes on its path (``SharedTrie``). A client's own handlers (its
   retries, S3's redirects) never reach its session or another client;
4. one alias cache per session's aliases (an alias depends only on the event name and those).

And what botocore loads for them: the service models of every service read hold all of its
operations (EC2: about 700; 60 MB for the services attest reads, held for the whole AWS
collection), where a scan calls about 50. :func:`trimmed_loader` loads each with only the
operations attest calls and the shapes they reach.

Measured on 4 accounts x 20 regions without latency (1,360 clients, 3,200 calls): scan CPU
17.6 s -> 11.7 s, full garbage collections 22 -> 10, peak RSS 266 -> 220 MB; the findings the
same. When the AWS collection ends, :func:`release` lets go of the shared classes and models. Each part replaces a botocore internal: if a release renames one, :func:`install` leaves
that part as botocore has it (results stay right, the costs come back) and
tests/collectors/test_aws_client_costs.py fails, so that CI says so.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import botocore.client
import botocore.hooks
import botocore.loaders
import botocore.model

# botocore's own trie, kept for tests/collectors/test_aws_client_costs.py to compare against
BotocoreTrie: Any = getattr(botocore.hooks, "_PrefixTrie", None)
_MIDDLE = getattr(botocore.hooks, "_MIDDLE", 1)   # a handler's default place among its key's


class SharedTrie(BotocoreTrie or object):   # type: ignore[misc]
    """botocore's handler trie, copied in constant time: a copy shares the nodes, and a change
    on either side first copies the nodes on its path (those it owns are marked with its
    token). Reading (``prefix_search``) is botocore's, unchanged."""

    def __init__(self) -> None:
        self._token = object()
        self._root = {"chunk": None, "children": {}, "values": None, "owner": self._token}

    def _own(self, node: dict[str, Any]) -> dict[str, Any]:
        if node.get("owner") is self._token:
            return node
        values = node["values"]
        return {"chunk": node["chunk"], "children": dict(node["children"]),
                "values": None if values is None else botocore.hooks.NodeList(
                    values.first[:], values.middle[:], values.last[:]),
                "owner": self._token}

    def append_item(self, key: str, value: Any, section: int = _MIDDLE) -> None:
        current = self._root = self._own(self._root)
        for part in key.split("."):
            child = current["children"].get(part)
            child = ({"chunk": part, "values": None, "children": {}, "owner": self._token}
                     if child is None else self._own(child))
            current["children"][part] = child
            current = child
        if current["values"] is None:
            current["values"] = botocore.hooks.NodeList([], [], [])
        current["values"][section].append(value)

    def remove_item(self, key: str, value: Any) -> None:
        current = self._root = self._own(self._root)
        for part in key.split("."):    # own the path botocore's removal changes in place
            child = current["children"].get(part)
            if child is None:
                break
            child = self._own(child)
            current["children"][part] = child
            current = child
        super().remove_item(key, value)

    def __copy__(self) -> "SharedTrie":
        new = self.__class__.__new__(self.__class__)
        new._root, new._token = self._root, object()
        self._token = object()   # the nodes are shared now: neither side changes them in place
        return new


# what is shared, until release(): client classes by service model, service models by loaded
# JSON (each kept with what it is keyed by, so that its id is not reused meanwhile)
_classes: dict[tuple[str, str, int], tuple[Any, type]] = {}   # -> (the service model, class)
_models: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}   # -> (the JSON, model)


def release() -> None:
    """Let go of the shared classes and models (the service models' JSON, tens of MB, stays
    alive through them): the AWS collection is over. Clients made later build them again."""
    _classes.clear()
    _models.clear()


def _replace(owner: Any, name: str, make: Callable[[Any], Callable[..., Any]]) -> bool:
    """``owner.name`` replaced by ``make(botocore's own)``, once per process; False when botocore
    has no such attribute (the part is then left out)."""
    original = getattr(owner, name, None)
    if original is None:
        return False
    if not getattr(original, "attest_shared", False):
        shared = make(original)
        shared.attest_shared = True   # type: ignore[attr-defined]
        setattr(owner, name, shared)
    return True


def _share_client_classes() -> bool:
    def make(build: Any) -> Callable[..., type]:
        def shared(self: Any, service_name: str, service_model: Any) -> type:
            key = (service_name, service_model.api_version, id(service_model))
            kept = _classes.get(key)
            if kept is None:   # two threads may both build it: the first one kept is everyone's
                kept = _classes.setdefault(key, (service_model,
                                                 build(self, service_name, service_model)))
            return kept[1]
        return shared
    return _replace(botocore.client.ClientCreator, "_create_client_class", make)


def _share_service_models() -> bool:
    def make(_: Any) -> Callable[..., Any]:
        def shared(self: Any, service_name: str, api_version: str | None = None) -> Any:
            json_model = self._loader.load_service_model(service_name, "service-2",
                                                         api_version=api_version)
            key = (service_name, api_version, id(json_model))   # another loader: its own
            kept = _models.get(key)
            if kept is None:
                kept = _models.setdefault(key, (json_model, botocore.model.ServiceModel(
                    json_model, service_name=service_name)))
            return kept[1]
        return shared
    return _replace(botocore.client.ClientCreator, "_load_service_model", make)


def _share_handler_tries() -> bool:
    if BotocoreTrie is None or not all(hasattr(BotocoreTrie, m) for m in
                                       ("append_item", "remove_item", "prefix_search")):
        return False
    botocore.hooks._PrefixTrie = SharedTrie   # HierarchicalEmitter() makes one of these
    return True


def _share_alias_caches() -> bool:
    aliaser = getattr(botocore.hooks, "EventAliaser", None)
    if aliaser is None or not hasattr(aliaser(botocore.hooks.HierarchicalEmitter()),
                                      "_alias_name_cache"):
        return False

    def make(_: Any) -> Callable[[Any], Any]:
        def shared(self: Any) -> Any:
            new = self.__class__(copy.copy(self._emitter), copy.copy(self._event_aliases))
            new._alias_name_cache = self._alias_name_cache    # same aliases: same answers
            return new
        return shared
    return _replace(aliaser, "__copy__", make)


def trimmed_loader(data_path: str | None, operations: Mapping[str, frozenset[str]]) -> Any:
    """A botocore data loader whose service models hold only ``operations[service]`` and the
    shapes those reach (a service not named there: its whole model). A scan calls about 50 of
    the 2,000 operations of the services it reads; their whole models are 60 MB once loaded
    (EC2's alone 13 MB), held for the whole AWS collection. A client made from a trimmed model
    has a method for each kept operation only: tests/collectors/test_aws_client_costs.py
    checks that every operation attest's AWS code calls is kept."""
    loader = botocore.loaders.create_loader(data_path)
    loader.file_loader = _TrimmingFileLoader(loader.file_loader, operations)
    return loader


class _TrimmingFileLoader:
    """botocore's JSON file loader, trimming each ``<service>/<version>/service-2`` it loads,
    and what its extras (``service-2.sdk-extras``, merged into the model after it is loaded)
    would add to the shapes it left out: a shape merged in without its type would break
    botocore's list of error shapes."""

    def __init__(self, inner: Any, operations: Mapping[str, frozenset[str]]) -> None:
        self.inner, self.operations = inner, operations
        self.left_out: dict[tuple[str, str], set[str]] = {}   # (service, version) -> shapes

    def exists(self, file_path: str) -> bool:
        return bool(self.inner.exists(file_path))

    def load_file(self, file_path: str) -> Any:
        data = self.inner.load_file(file_path)
        parts = file_path.replace("\\", "/").split("/")
        if data is None or len(parts) < 3 or parts[-3] not in self.operations:
            return data
        key = (parts[-3], parts[-2])
        if parts[-1] == "service-2":
            trimmed = trim_model(data, self.operations[parts[-3]])
            self.left_out[key] = set(data["shapes"]) - set(trimmed["shapes"])
            return trimmed
        merged = (data.get("merge") or {}).get("shapes") if isinstance(data, dict) else None
        if parts[-1].startswith("service-2.") and merged and key in self.left_out:
            for name in self.left_out[key] & set(merged):
                del merged[name]
        return data


def trim_model(model: Any, operations: frozenset[str]) -> Any:
    """``model`` (a service-2 JSON document) with only ``operations`` and the shapes their input,
    output and errors reach, through structure members, list members and map keys and values."""
    ops = type(model["operations"])((name, op) for name, op in model["operations"].items()
                                    if name in operations)
    shapes = model["shapes"]
    reached: set[str] = set()
    todo = [ref["shape"] for op in ops.values()
            for ref in [op.get("input"), op.get("output"), *op.get("errors", [])] if ref]
    while todo:
        name = todo.pop()
        if name in reached or name not in shapes:
            continue
        reached.add(name)
        shape = shapes[name]
        todo.extend(shape[key]["shape"] for key in ("member", "key", "value") if key in shape)
        todo.extend(member["shape"] for member in shape.get("members", {}).values())
    trimmed = type(model)(model)
    trimmed["operations"] = ops
    trimmed["shapes"] = type(shapes)((name, shape) for name, shape in shapes.items()
                                     if name in reached)
    return trimmed


def install() -> frozenset[str]:
    """Share what can be shared (once per process; again is harmless); the parts in place."""
    parts = {"classes": _share_client_classes, "service models": _share_service_models,
             "handlers": _share_handler_tries, "aliases": _share_alias_caches}
    return frozenset(name for name, share in parts.items() if _tried(share))


def _tried(share: Any) -> bool:
    try:
        return bool(share())
    except (AttributeError, TypeError):   # botocore changed what this part relies on: skipped
        return False


INSTALLED = install()
