"""collector.filters.pii: each selector (fields, keys, values, pattern), rule order, and what is
never touched."""

from __future__ import annotations

import copy
import hashlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.filters.config import PiiRuleConfig
from collector.filters.pii import DeepWalk, PiiRule, PiiRules


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event() -> dict:
    return {
        "type": "identify",
        "messageId": "ann@example.com",  # ids that look like PII must survive
        "userId": "ann@example.com",
        "anonymousId": "4111111111111111",
        "traits": {"email": "Ann@Example.com", "name": "Ann", "Password": "hunter2",
                   "address": {"city": "Paris", "ssn": "123-45-6789"}},
        "properties": {"note": "call me", "cards": ["4111111111111111", "x", 4111111111111111], "count": 3},
        "context": {"ip": "203.0.113.9", "traits": {"email": "ann@example.com"}, "library": {"name": "analytics.js"}},
    }


def apply(event: dict, *rules: dict) -> dict:
    PiiRules([PiiRuleConfig(**rule) for rule in rules]).apply(event)
    return event


def test_fields_select_dotted_paths_from_the_root():
    result = apply(event(), {"fields": ["traits.email", "context.traits.email"], "action": "hash"})
    assert result["traits"]["email"] == sha256("ann@example.com")
    assert result["context"]["traits"]["email"] == sha256("ann@example.com")
    assert result["userId"] == "ann@example.com"


def test_fields_that_are_absent_change_nothing():
    before = event()
    result = apply(copy.deepcopy(before), {"fields": ["traits.phone", "nothing.here", "traits.name.first"],
                                           "action": "drop"})
    assert result == before


def test_fields_may_name_user_id_explicitly():
    result = apply(event(), {"fields": ["userId"], "action": "hash", "salt": "s"})
    assert result["userId"] == sha256("sann@example.com")


def test_fields_truncate_ip():
    assert apply(event(), {"fields": ["context.ip"], "action": "truncate_ip"})["context"]["ip"] == "203.0.113.0"


def test_keys_match_at_any_depth_without_case():
    result = apply(event(), {"keys": ["password", "SSN"], "action": "drop"})
    assert "Password" not in result["traits"]
    assert result["traits"]["address"] == {"city": "Paris"}
    assert result["traits"]["name"] == "Ann"


def test_keys_act_on_a_whole_object():
    result = apply(event(), {"keys": ["address"], "action": "mask"})
    assert result["traits"]["address"] == "[redacted]"


def test_keys_never_reach_top_level_fields():
    result = apply(event(), {"keys": ["userId", "messageId", "anonymousId", "type"], "action": "drop"})
    assert result == event()


def test_values_detect_inside_objects_and_lists():
    result = apply(event(), {"values": ["credit_card"], "action": "mask", "keep_last": 4})
    assert result["properties"]["cards"] == ["************1111", "x", "************1111"]
    assert result["anonymousId"] == "4111111111111111"  # top level: only by fields
    assert result["properties"]["count"] == 3


def test_values_drop_list_items():
    result = apply(event(), {"values": ["credit_card"], "action": "drop"})
    assert result["properties"]["cards"] == ["x"]


def test_values_email_across_traits_and_context():
    result = apply(event(), {"values": ["email"], "action": "drop"})
    assert "email" not in result["traits"] and "email" not in result["context"]["traits"]
    assert result["userId"] == result["messageId"] == "ann@example.com"


def test_values_ip_in_context():
    result = apply(event(), {"values": ["ip"], "action": "truncate_ip"})
    assert result["context"]["ip"] == "203.0.113.0"


def test_pattern_is_searched_in_values():
    result = apply(event(), {"pattern": "^call", "action": "mask"})
    assert result["properties"]["note"] == "[redacted]"
    assert result["traits"]["name"] == "Ann"


def test_pattern_sees_integers_as_their_digits():
    result = apply(event(), {"pattern": "^3$", "action": "drop"})
    assert "count" not in result["properties"]


def test_selectors_of_one_rule_add_up():
    result = apply(event(), {"fields": ["context.ip"], "keys": ["name"], "values": ["us_ssn"], "action": "drop"})
    assert "ip" not in result["context"]
    assert "name" not in result["traits"]
    assert "ssn" not in result["traits"]["address"]


def test_rules_apply_in_order_each_on_what_the_previous_left():
    hash_then_mask = apply(event(), {"fields": ["traits.email"], "action": "hash"},
                           {"values": ["email"], "action": "mask"})
    assert hash_then_mask["traits"]["email"] == sha256("ann@example.com")  # no longer looks like an e-mail
    mask_then_hash = apply(event(), {"values": ["email"], "action": "mask"},
                           {"fields": ["traits.email"], "action": "hash"})
    assert mask_then_hash["traits"]["email"] == sha256("[redacted]")


def test_a_rule_on_an_event_without_those_objects():
    bare = {"type": "track", "event": "E", "userId": "u", "messageId": "m"}
    assert apply(dict(bare), {"values": ["email"], "keys": ["x"], "action": "drop"}) == bare


def test_a_rule_reports_whether_it_walks_the_event():
    assert not PiiRule(PiiRuleConfig(fields=["context.ip"], action="truncate_ip")).deep
    assert PiiRule(PiiRuleConfig(keys=["password"], action="drop")).deep


# -- several deep rules in one walk ------------------------------------------------------------------

_KEYS = ["email", "Password", "ssn", "ip", "note", "items", "address"]
_SCALARS = st.one_of(
    st.sampled_from(["ann@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "203.0.113.9",
                     "2001:db8::1", "123-45-6789", "hunter2", "Paris", "19.99", ""]),
    st.integers(min_value=-(10**17), max_value=10**17), st.booleans(), st.none(), st.floats(allow_nan=False),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(_KEYS), inner, max_size=4), max_leaves=12)
_RULES = st.lists(st.fixed_dictionaries({}, optional={
    "fields": st.lists(st.sampled_from(["userId", "context.ip", "traits.email", "properties.address",
                                        "traits", "properties.items"]), max_size=2),
    "keys": st.lists(st.sampled_from(_KEYS), max_size=2),
    "values": st.lists(st.sampled_from(["email", "credit_card", "phone", "ip", "us_ssn"]), max_size=2),
    "pattern": st.sampled_from(["Par", r"\d{3}"]),
}).map(lambda selectors: selectors or {"keys": ["note"]}).flatmap(
    lambda selectors: st.sampled_from([{"action": "drop"}, {"action": "hash"}, {"action": "truncate_ip"},
                                       {"action": "mask", "keep_last": 2}]).map(lambda a: {**selectors, **a})),
    min_size=1, max_size=4)


_CONTAINER = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5)


@settings(max_examples=300, deadline=None)
@example(  # a deep rule, then fields inside traits: the walk must come first
    {"userId": "u", "properties": {}, "traits": {"email": "ann@example.com"}, "context": {}},
    [{"values": ["email"], "action": "mask", "keep_last": 2}, {"fields": ["traits.email"], "action": "hash"}])
@example(  # keys selecting a container after a rule that looks inside it
    {"userId": "u", "properties": {"address": {"note": "ann@example.com", "ip": "203.0.113.9"}}, "traits": {},
     "context": {}},
    [{"values": ["email"], "action": "hash"}, {"keys": ["address"], "action": "hash"}])
@given(st.fixed_dictionaries({"userId": _SCALARS, "properties": _CONTAINER, "traits": _CONTAINER,
                              "context": _CONTAINER}), _RULES)
def test_shared_walks_give_what_one_walk_per_rule_gives(event, rules):
    configs = [PiiRuleConfig(**rule) for rule in rules]
    one_walk_each = copy.deepcopy(event)
    for config in configs:
        PiiRule(config).apply(one_walk_each)
    shared = copy.deepcopy(event)
    PiiRules(configs).apply(shared)
    assert shared == one_walk_each


def test_consecutive_deep_rules_share_one_walk_and_top_level_fields_do_not_split_it():
    rules = PiiRules([PiiRuleConfig(**rule) for rule in [
        {"fields": ["context.ip"], "action": "truncate_ip"},
        {"keys": ["password"], "action": "drop"},
        {"fields": ["userId"], "action": "hash"},
        {"values": ["email"], "action": "mask"},
        {"fields": ["traits.email"], "action": "hash"},  # inside traits: the walk before it must end first
        {"values": ["phone"], "action": "mask"},
    ]])
    walks = [step for step in rules.steps if isinstance(step, DeepWalk)]
    assert [len(walk.rules) for walk in walks] == [2, 1]
